-- Monthly revenue per category. Orders arrive with replayed events, hence the DISTINCT.
WITH valid_orders AS (
  SELECT DISTINCT order_id, order_ts
  FROM orders
  WHERE status <> 'returned'
)
SELECT
  p.category,
  CAST(date_trunc('MONTH', o.order_ts) AS DATE) AS month,
  COUNT(DISTINCT o.order_id) AS orders,
  SUM(i.quantity) AS units,
  ROUND(SUM(i.quantity * i.unit_price * (1 - i.discount)), 2) AS revenue
FROM order_items AS i
JOIN valid_orders AS o ON i.order_id = o.order_id
JOIN products AS p ON i.product_id = p.product_id
GROUP BY p.category, CAST(date_trunc('MONTH', o.order_ts) AS DATE)
