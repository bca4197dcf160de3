"""The 24 tables of the TPC-DS schema, with the column names and SQL types
DuckDB's `tpcds` extension gives them, as Arrow schemas: what `tpcds_data`
generates rows for."""

import pyarrow as pa

TYPES = {
    "int": pa.int32(),
    "str": pa.string(),
    "date": pa.date32(),
    "money": pa.decimal128(7, 2),
    "pct": pa.decimal128(5, 2),
    "cost": pa.decimal128(15, 2),
}


def address_columns(prefix: str) -> str:
    """The address columns several dimensions share, named with `prefix`."""
    names = ["street_number", "street_name", "street_type", "suite_number", "city", "county", "state", "zip",
             "country"]
    return ", ".join(f"{prefix}_{name} str" for name in names) + f", {prefix}_gmt_offset pct"


SCHEMA_SPEC = {
    "call_center": "cc_call_center_sk int, cc_call_center_id str, cc_rec_start_date date, cc_rec_end_date date, "
    "cc_closed_date_sk int, cc_open_date_sk int, cc_name str, cc_class str, cc_employees int, cc_sq_ft int, "
    "cc_hours str, cc_manager str, cc_mkt_id int, cc_mkt_class str, cc_mkt_desc str, cc_market_manager str, "
    "cc_division int, cc_division_name str, cc_company int, cc_company_name str, "
    + address_columns("cc") + ", cc_tax_percentage pct",
    "catalog_page": "cp_catalog_page_sk int, cp_catalog_page_id str, cp_start_date_sk int, cp_end_date_sk int, "
    "cp_department str, cp_catalog_number int, cp_catalog_page_number int, cp_description str, cp_type str",
    "catalog_returns": "cr_returned_date_sk int, cr_returned_time_sk int, cr_item_sk int, "
    "cr_refunded_customer_sk int, cr_refunded_cdemo_sk int, cr_refunded_hdemo_sk int, cr_refunded_addr_sk int, "
    "cr_returning_customer_sk int, cr_returning_cdemo_sk int, cr_returning_hdemo_sk int, "
    "cr_returning_addr_sk int, cr_call_center_sk int, cr_catalog_page_sk int, cr_ship_mode_sk int, "
    "cr_warehouse_sk int, cr_reason_sk int, cr_order_number int, cr_return_quantity int, "
    "cr_return_amount money, cr_return_tax money, cr_return_amt_inc_tax money, cr_fee money, "
    "cr_return_ship_cost money, cr_refunded_cash money, cr_reversed_charge money, cr_store_credit money, "
    "cr_net_loss money",
    "catalog_sales": "cs_sold_date_sk int, cs_sold_time_sk int, cs_ship_date_sk int, cs_bill_customer_sk int, "
    "cs_bill_cdemo_sk int, cs_bill_hdemo_sk int, cs_bill_addr_sk int, cs_ship_customer_sk int, "
    "cs_ship_cdemo_sk int, cs_ship_hdemo_sk int, cs_ship_addr_sk int, cs_call_center_sk int, "
    "cs_catalog_page_sk int, cs_ship_mode_sk int, cs_warehouse_sk int, cs_item_sk int, cs_promo_sk int, "
    "cs_order_number int, cs_quantity int, cs_wholesale_cost money, cs_list_price money, cs_sales_price money, "
    "cs_ext_discount_amt money, cs_ext_sales_price money, cs_ext_wholesale_cost money, cs_ext_list_price money, "
    "cs_ext_tax money, cs_coupon_amt money, cs_ext_ship_cost money, cs_net_paid money, "
    "cs_net_paid_inc_tax money, cs_net_paid_inc_ship money, cs_net_paid_inc_ship_tax money, "
    "cs_net_profit money",
    "customer": "c_customer_sk int, c_customer_id str, c_current_cdemo_sk int, c_current_hdemo_sk int, "
    "c_current_addr_sk int, c_first_shipto_date_sk int, c_first_sales_date_sk int, c_salutation str, "
    "c_first_name str, c_last_name str, c_preferred_cust_flag str, c_birth_day int, c_birth_month int, "
    "c_birth_year int, c_birth_country str, c_login str, c_email_address str, c_last_review_date_sk int",
    "customer_address": "ca_address_sk int, ca_address_id str, "
    + address_columns("ca") + ", ca_location_type str",
    "customer_demographics": "cd_demo_sk int, cd_gender str, cd_marital_status str, cd_education_status str, "
    "cd_purchase_estimate int, cd_credit_rating str, cd_dep_count int, cd_dep_employed_count int, "
    "cd_dep_college_count int",
    "date_dim": "d_date_sk int, d_date_id str, d_date date, d_month_seq int, d_week_seq int, d_quarter_seq int, "
    "d_year int, d_dow int, d_moy int, d_dom int, d_qoy int, d_fy_year int, d_fy_quarter_seq int, "
    "d_fy_week_seq int, d_day_name str, d_quarter_name str, d_holiday str, d_weekend str, "
    "d_following_holiday str, d_first_dom int, d_last_dom int, d_same_day_ly int, d_same_day_lq int, "
    "d_current_day str, d_current_week str, d_current_month str, d_current_quarter str, d_current_year str",
    "household_demographics": "hd_demo_sk int, hd_income_band_sk int, hd_buy_potential str, hd_dep_count int, "
    "hd_vehicle_count int",
    "income_band": "ib_income_band_sk int, ib_lower_bound int, ib_upper_bound int",
    "inventory": "inv_date_sk int, inv_item_sk int, inv_warehouse_sk int, inv_quantity_on_hand int",
    "item": "i_item_sk int, i_item_id str, i_rec_start_date date, i_rec_end_date date, i_item_desc str, "
    "i_current_price money, i_wholesale_cost money, i_brand_id int, i_brand str, i_class_id int, i_class str, "
    "i_category_id int, i_category str, i_manufact_id int, i_manufact str, i_size str, i_formulation str, "
    "i_color str, i_units str, i_container str, i_manager_id int, i_product_name str",
    "promotion": "p_promo_sk int, p_promo_id str, p_start_date_sk int, p_end_date_sk int, p_item_sk int, "
    "p_cost cost, p_response_target int, p_promo_name str, p_channel_dmail str, p_channel_email str, "
    "p_channel_catalog str, p_channel_tv str, p_channel_radio str, p_channel_press str, p_channel_event str, "
    "p_channel_demo str, p_channel_details str, p_purpose str, p_discount_active str",
    "reason": "r_reason_sk int, r_reason_id str, r_reason_desc str",
    "ship_mode": "sm_ship_mode_sk int, sm_ship_mode_id str, sm_type str, sm_code str, sm_carrier str, "
    "sm_contract str",
    "store": "s_store_sk int, s_store_id str, s_rec_start_date date, s_rec_end_date date, s_closed_date_sk int, "
    "s_store_name str, s_number_employees int, s_floor_space int, s_hours str, s_manager str, s_market_id int, "
    "s_geography_class str, s_market_desc str, s_market_manager str, s_division_id int, s_division_name str, "
    "s_company_id int, s_company_name str, "
    + address_columns("s") + ", s_tax_precentage pct",
    "store_returns": "sr_returned_date_sk int, sr_return_time_sk int, sr_item_sk int, sr_customer_sk int, "
    "sr_cdemo_sk int, sr_hdemo_sk int, sr_addr_sk int, sr_store_sk int, sr_reason_sk int, sr_ticket_number int, "
    "sr_return_quantity int, sr_return_amt money, sr_return_tax money, sr_return_amt_inc_tax money, "
    "sr_fee money, sr_return_ship_cost money, sr_refunded_cash money, sr_reversed_charge money, "
    "sr_store_credit money, sr_net_loss money",
    "store_sales": "ss_sold_date_sk int, ss_sold_time_sk int, ss_item_sk int, ss_customer_sk int, "
    "ss_cdemo_sk int, ss_hdemo_sk int, ss_addr_sk int, ss_store_sk int, ss_promo_sk int, "
    "ss_ticket_number int, ss_quantity int, ss_wholesale_cost money, ss_list_price money, ss_sales_price money, "
    "ss_ext_discount_amt money, ss_ext_sales_price money, ss_ext_wholesale_cost money, ss_ext_list_price money, "
    "ss_ext_tax money, ss_coupon_amt money, ss_net_paid money, ss_net_paid_inc_tax money, ss_net_profit money",
    "time_dim": "t_time_sk int, t_time_id str, t_time int, t_hour int, t_minute int, t_second int, t_am_pm str, "
    "t_shift str, t_sub_shift str, t_meal_time str",
    "warehouse": "w_warehouse_sk int, w_warehouse_id str, w_warehouse_name str, w_warehouse_sq_ft int, "
    + address_columns("w"),
    "web_page": "wp_web_page_sk int, wp_web_page_id str, wp_rec_start_date date, wp_rec_end_date date, "
    "wp_creation_date_sk int, wp_access_date_sk int, wp_autogen_flag str, wp_customer_sk int, wp_url str, "
    "wp_type str, wp_char_count int, wp_link_count int, wp_image_count int, wp_max_ad_count int",
    "web_returns": "wr_returned_date_sk int, wr_returned_time_sk int, wr_item_sk int, "
    "wr_refunded_customer_sk int, wr_refunded_cdemo_sk int, wr_refunded_hdemo_sk int, wr_refunded_addr_sk int, "
    "wr_returning_customer_sk int, wr_returning_cdemo_sk int, wr_returning_hdemo_sk int, "
    "wr_returning_addr_sk int, wr_web_page_sk int, wr_reason_sk int, wr_order_number int, "
    "wr_return_quantity int, wr_return_amt money, wr_return_tax money, wr_return_amt_inc_tax money, "
    "wr_fee money, wr_return_ship_cost money, wr_refunded_cash money, wr_reversed_charge money, "
    "wr_account_credit money, wr_net_loss money",
    "web_sales": "ws_sold_date_sk int, ws_sold_time_sk int, ws_ship_date_sk int, ws_item_sk int, "
    "ws_bill_customer_sk int, ws_bill_cdemo_sk int, ws_bill_hdemo_sk int, ws_bill_addr_sk int, "
    "ws_ship_customer_sk int, ws_ship_cdemo_sk int, ws_ship_hdemo_sk int, ws_ship_addr_sk int, "
    "ws_web_page_sk int, ws_web_site_sk int, ws_ship_mode_sk int, ws_warehouse_sk int, ws_promo_sk int, "
    "ws_order_number int, ws_quantity int, ws_wholesale_cost money, ws_list_price money, ws_sales_price money, "
    "ws_ext_discount_amt money, ws_ext_sales_price money, ws_ext_wholesale_cost money, ws_ext_list_price money, "
    "ws_ext_tax money, ws_coupon_amt money, ws_ext_ship_cost money, ws_net_paid money, "
    "ws_net_paid_inc_tax money, ws_net_paid_inc_ship money, ws_net_paid_inc_ship_tax money, "
    "ws_net_profit money",
    "web_site": "web_site_sk int, web_site_id str, web_rec_start_date date, web_rec_end_date date, web_name str, "
    "web_open_date_sk int, web_close_date_sk int, web_class str, web_manager str, web_mkt_id int, "
    "web_mkt_class str, web_mkt_desc str, web_market_manager str, web_company_id int, web_company_name str, "
    + address_columns("web") + ", web_tax_percentage pct",
}


def schema(name: str) -> pa.Schema:
    """The Arrow schema of table `name`."""
    fields = [column.split() for column in SCHEMA_SPEC[name].split(", ")]
    return pa.schema([pa.field(column, TYPES[kind]) for column, kind in fields])
