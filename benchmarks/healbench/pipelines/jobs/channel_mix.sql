-- Orders per channel and month; replayed order events are counted once.
SELECT
  channel,
  CAST(date_trunc('MONTH', order_ts) AS DATE) AS month,
  COUNT(DISTINCT order_id) AS orders,
  COALESCE(MAX(status), 'none') AS last_status
FROM orders
GROUP BY channel, CAST(date_trunc('MONTH', order_ts) AS DATE)
