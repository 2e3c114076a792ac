-- Each paid order with the customer's order number, running lifetime value and gap.
WITH paid AS (
  SELECT o.customer_id, o.order_id, o.order_ts, p.amount
  FROM (SELECT DISTINCT order_id, customer_id, order_ts FROM orders) AS o
  JOIN payments AS p ON p.order_id = o.order_id
)
SELECT
  customer_id,
  order_id,
  order_ts,
  ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY order_ts, order_id) AS order_number,
  ROUND(SUM(amount) OVER (
    PARTITION BY customer_id ORDER BY order_ts, order_id
    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW), 2) AS lifetime_value,
  DATEDIFF(order_ts, LAG(order_ts) OVER (PARTITION BY customer_id ORDER BY order_ts, order_id)) AS days_since_previous
FROM paid
