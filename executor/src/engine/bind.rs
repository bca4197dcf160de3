//! Binding Arrow values to prepared statement parameters.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, Decimal128Type, Float16Type, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, Int8Type, IntervalMonthDayNanoType, IntervalUnit, Time32MillisecondType, Time32SecondType,
    Time64MicrosecondType, Time64NanosecondType, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use duckdb::ffi;

use crate::error::{Error, Result};

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Binds `array[row]` to parameter `index` (one-based) of `stmt`.
pub(super) fn bind_value(
    stmt: ffi::duckdb_prepared_statement,
    index: usize,
    array: &dyn Array,
    row: usize,
) -> Result<()> {
    let idx = index as u64;
    let unsupported = || Error::UnsupportedParameter {
        index,
        data_type: array.data_type().to_string(),
    };
    // SAFETY (every call below): `stmt` is a prepared statement owned by the
    // caller, idx is within its parameter count (checked by bind_row), and
    // borrowed buffers outlive the call (DuckDB copies them).
    let state = unsafe {
        if array.is_null(row) {
            ffi::duckdb_bind_null(stmt, idx)
        } else {
            match array.data_type() {
                DataType::Null => ffi::duckdb_bind_null(stmt, idx),
                DataType::Boolean => ffi::duckdb_bind_boolean(stmt, idx, array.as_boolean().value(row)),
                DataType::Int8 => ffi::duckdb_bind_int8(stmt, idx, array.as_primitive::<Int8Type>().value(row)),
                DataType::Int16 => ffi::duckdb_bind_int16(stmt, idx, array.as_primitive::<Int16Type>().value(row)),
                DataType::Int32 => ffi::duckdb_bind_int32(stmt, idx, array.as_primitive::<Int32Type>().value(row)),
                DataType::Int64 => ffi::duckdb_bind_int64(stmt, idx, array.as_primitive::<Int64Type>().value(row)),
                DataType::UInt8 => ffi::duckdb_bind_uint8(stmt, idx, array.as_primitive::<UInt8Type>().value(row)),
                DataType::UInt16 => ffi::duckdb_bind_uint16(stmt, idx, array.as_primitive::<UInt16Type>().value(row)),
                DataType::UInt32 => ffi::duckdb_bind_uint32(stmt, idx, array.as_primitive::<UInt32Type>().value(row)),
                DataType::UInt64 => ffi::duckdb_bind_uint64(stmt, idx, array.as_primitive::<UInt64Type>().value(row)),
                DataType::Float16 => {
                    ffi::duckdb_bind_float(stmt, idx, array.as_primitive::<Float16Type>().value(row).to_f32())
                }
                DataType::Float32 => ffi::duckdb_bind_float(stmt, idx, array.as_primitive::<Float32Type>().value(row)),
                DataType::Float64 => ffi::duckdb_bind_double(stmt, idx, array.as_primitive::<Float64Type>().value(row)),
                DataType::Utf8 => bind_text(stmt, idx, array.as_string::<i32>().value(row)),
                DataType::LargeUtf8 => bind_text(stmt, idx, array.as_string::<i64>().value(row)),
                DataType::Utf8View => bind_text(stmt, idx, array.as_string_view().value(row)),
                DataType::Binary => bind_blob(stmt, idx, array.as_binary::<i32>().value(row)),
                DataType::LargeBinary => bind_blob(stmt, idx, array.as_binary::<i64>().value(row)),
                DataType::BinaryView => bind_blob(stmt, idx, array.as_binary_view().value(row)),
                DataType::FixedSizeBinary(_) => bind_blob(stmt, idx, array.as_fixed_size_binary().value(row)),
                DataType::Date32 => ffi::duckdb_bind_date(
                    stmt,
                    idx,
                    ffi::duckdb_date {
                        days: array.as_primitive::<Date32Type>().value(row),
                    },
                ),
                DataType::Date64 => ffi::duckdb_bind_date(
                    stmt,
                    idx,
                    ffi::duckdb_date {
                        days: (array.as_primitive::<Date64Type>().value(row).div_euclid(86_400_000)) as i32,
                    },
                ),
                DataType::Time32(unit) | DataType::Time64(unit) => {
                    let micros = time_micros(array, *unit, row).ok_or_else(unsupported)?;
                    ffi::duckdb_bind_time(stmt, idx, ffi::duckdb_time { micros })
                }
                DataType::Timestamp(unit, tz) => {
                    let micros = timestamp_micros(array, *unit, row);
                    let value = ffi::duckdb_timestamp { micros };
                    if tz.is_some() {
                        ffi::duckdb_bind_timestamp_tz(stmt, idx, value)
                    } else {
                        ffi::duckdb_bind_timestamp(stmt, idx, value)
                    }
                }
                DataType::Decimal128(precision, scale) if *scale >= 0 => {
                    let value = array.as_primitive::<Decimal128Type>().value(row);
                    ffi::duckdb_bind_decimal(
                        stmt,
                        idx,
                        ffi::duckdb_decimal {
                            width: *precision,
                            scale: *scale as u8,
                            value: ffi::duckdb_hugeint {
                                lower: value as u64,
                                upper: (value >> 64) as i64,
                            },
                        },
                    )
                }
                DataType::Interval(IntervalUnit::MonthDayNano) => {
                    let value = array.as_primitive::<IntervalMonthDayNanoType>().value(row);
                    ffi::duckdb_bind_interval(
                        stmt,
                        idx,
                        ffi::duckdb_interval {
                            months: value.months,
                            days: value.days,
                            micros: value.nanoseconds / 1_000,
                        },
                    )
                }
                DataType::Dictionary(_, _) => {
                    let values = arrow::compute::cast(&array.slice(row, 1), &dictionary_value_type(array))?;
                    return bind_value(stmt, index, values.as_ref(), 0);
                }
                _ => return Err(unsupported()),
            }
        }
    };
    if state != ffi::DuckDBSuccess {
        return Err(Error::UnsupportedParameter {
            index,
            data_type: array.data_type().to_string(),
        });
    }
    Ok(())
}

fn dictionary_value_type(array: &dyn Array) -> DataType {
    match array.data_type() {
        DataType::Dictionary(_, value) => value.as_ref().clone(),
        other => other.clone(),
    }
}

unsafe fn bind_text(stmt: ffi::duckdb_prepared_statement, idx: u64, text: &str) -> ffi::duckdb_state {
    unsafe { ffi::duckdb_bind_varchar_length(stmt, idx, text.as_ptr().cast(), text.len() as u64) }
}

unsafe fn bind_blob(stmt: ffi::duckdb_prepared_statement, idx: u64, bytes: &[u8]) -> ffi::duckdb_state {
    unsafe { ffi::duckdb_bind_blob(stmt, idx, bytes.as_ptr().cast(), bytes.len() as u64) }
}

fn time_micros(array: &dyn Array, unit: TimeUnit, row: usize) -> Option<i64> {
    Some(match unit {
        TimeUnit::Second => array.as_primitive_opt::<Time32SecondType>()?.value(row) as i64 * 1_000_000,
        TimeUnit::Millisecond => array.as_primitive_opt::<Time32MillisecondType>()?.value(row) as i64 * 1_000,
        TimeUnit::Microsecond => array.as_primitive_opt::<Time64MicrosecondType>()?.value(row),
        TimeUnit::Nanosecond => array.as_primitive_opt::<Time64NanosecondType>()?.value(row) / 1_000,
    })
    .filter(|micros| (0..=MICROS_PER_DAY).contains(micros))
}

fn timestamp_micros(array: &dyn Array, unit: TimeUnit, row: usize) -> i64 {
    match unit {
        TimeUnit::Second => array.as_primitive::<TimestampSecondType>().value(row) * 1_000_000,
        TimeUnit::Millisecond => array.as_primitive::<TimestampMillisecondType>().value(row) * 1_000,
        TimeUnit::Microsecond => array.as_primitive::<TimestampMicrosecondType>().value(row),
        TimeUnit::Nanosecond => array
            .as_primitive::<TimestampNanosecondType>()
            .value(row)
            .div_euclid(1_000),
    }
}
