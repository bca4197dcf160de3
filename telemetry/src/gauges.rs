//! Gauges read from live objects when metrics are collected.
//!
//! An OpenTelemetry observable gauge keeps its callback for the life of the
//! process, and two gauges of one name report the same attribute set twice.
//! Here each name is registered once; every object that reports to it is
//! read at collection, their values summed per attribute set, and an object
//! that is gone simply stops counting.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};

use opentelemetry::KeyValue;

/// What an object reports: values with their attributes.
pub type Readings = Vec<(f64, Vec<KeyValue>)>;

/// Reads an object's values; `None` once the object is gone.
type Source = Box<dyn Fn() -> Option<Readings> + Send + Sync>;

/// One object reporting to a gauge.
struct Reporter {
    alive: Box<dyn Fn() -> bool + Send + Sync>,
    read: Source,
}

#[derive(Default)]
struct Gauge {
    sources: Mutex<Vec<Reporter>>,
}

impl Gauge {
    /// The sum of every live source's readings, per attribute set; sources
    /// whose object is gone are dropped.
    fn collect(&self) -> Vec<(f64, Vec<KeyValue>)> {
        let mut sums: Vec<(f64, Vec<KeyValue>)> = Vec::new();
        self.sources.lock().unwrap_or_else(|e| e.into_inner()).retain(|source| {
            let Some(readings) = (source.read)() else {
                return false;
            };
            for (value, attributes) in readings {
                match sums.iter_mut().find(|(_, known)| *known == attributes) {
                    Some((sum, _)) => *sum += value,
                    None => sums.push((value, attributes)),
                }
            }
            true
        });
        sums
    }
}

/// What a gauge's values are.
#[derive(Debug, Clone, Copy)]
pub enum GaugeUnit {
    /// How many of something (an integer gauge).
    Count,
    /// A duration in seconds.
    Seconds,
}

static GAUGES: LazyLock<Mutex<HashMap<&'static str, Arc<Gauge>>>> = LazyLock::new(Default::default);

/// Reports `read(instance)` in the gauge `name` for as long as `instance`
/// lives. The first report of a name registers the gauge with `description`
/// and `unit`.
pub fn observe_gauge<T: Send + Sync + 'static>(
    name: &'static str,
    description: &'static str,
    unit: GaugeUnit,
    instance: &Arc<T>,
    read: impl Fn(&T) -> Readings + Send + Sync + 'static,
) {
    let gauge = {
        let mut gauges = GAUGES.lock().unwrap_or_else(|e| e.into_inner());
        let known = gauges.get(name).cloned();
        known.unwrap_or_else(|| {
            let gauge = Arc::new(Gauge::default());
            register(name, description, unit, Arc::clone(&gauge));
            gauges.insert(name, Arc::clone(&gauge));
            gauge
        })
    };
    let instance: Weak<T> = Arc::downgrade(instance);
    let mut sources = gauge.sources.lock().unwrap_or_else(|e| e.into_inner());
    // Objects gone since the last collection stop counting now, so that
    // their entries do not pile up where nothing collects.
    sources.retain(|source| (source.alive)());
    let watched = Weak::clone(&instance);
    sources.push(Reporter {
        alive: Box::new(move || watched.strong_count() > 0),
        read: Box::new(move || instance.upgrade().map(|instance| read(&instance))),
    });
}

fn register(name: &'static str, description: &'static str, unit: GaugeUnit, gauge: Arc<Gauge>) {
    let meter = crate::meter();
    match unit {
        GaugeUnit::Count => {
            meter
                .u64_observable_gauge(name)
                .with_description(description)
                .with_callback(move |observer| {
                    for (value, attributes) in gauge.collect() {
                        observer.observe(value.max(0.0) as u64, &attributes);
                    }
                })
                .build();
        }
        GaugeUnit::Seconds => {
            meter
                .f64_observable_gauge(name)
                .with_description(description)
                .with_unit("s")
                .with_callback(move |observer| {
                    for (value, attributes) in gauge.collect() {
                        observer.observe(value, &attributes);
                    }
                })
                .build();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_sources_are_summed_per_attribute_set_and_dead_ones_dropped() {
        let gauge = Gauge::default();
        let add = |value: f64, server: &'static str| -> Arc<f64> {
            let instance = Arc::new(value);
            let weak = Arc::downgrade(&instance);
            let watched = Weak::clone(&weak);
            gauge.sources.lock().unwrap().push(Reporter {
                alive: Box::new(move || watched.strong_count() > 0),
                read: Box::new(move || {
                    weak.upgrade()
                        .map(|value| vec![(*value, vec![KeyValue::new("server", server)])])
                }),
            });
            instance
        };
        let one = add(1.0, "a");
        let two = add(2.0, "a");
        let other = add(5.0, "b");
        let mut sums = gauge.collect();
        sums.sort_by(|x, y| x.0.total_cmp(&y.0));
        assert_eq!(
            sums,
            vec![
                (3.0, vec![KeyValue::new("server", "a")]),
                (5.0, vec![KeyValue::new("server", "b")])
            ]
        );
        drop(two);
        drop(other);
        assert_eq!(gauge.collect(), vec![(1.0, vec![KeyValue::new("server", "a")])]);
        assert_eq!(gauge.sources.lock().unwrap().len(), 1);
        drop(one);
        assert!(gauge.collect().is_empty());
        assert!(gauge.sources.lock().unwrap().is_empty());
    }
}
