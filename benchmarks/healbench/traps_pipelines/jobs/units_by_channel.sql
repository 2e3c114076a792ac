-- Orders, units and revenue per channel and month. Order events are replayed, hence the DISTINCT.
SELECT
  o.channel,
  CAST(date_trunc('MONTH', o.order_ts) AS DATE) AS month,
  COUNT(DISTINCT o.order_id) AS orders,
  SUM(i.quantity) AS units,
  ROUND(SUM(i.quantity * i.unit_price), 2) AS revenue
FROM order_items AS i
JOIN (SELECT DISTINCT order_id, channel, order_ts FROM orders) AS o ON i.order_id = o.order_id
GROUP BY o.channel, CAST(date_trunc('MONTH', o.order_ts) AS DATE)
