-- The buyer of every order, read from the raw event payload (replays counted once).
SELECT DISTINCT
  order_id,
  CAST(get_json_object(payload, '$.customer.id') AS BIGINT) AS customer_id,
  get_json_object(payload, '$.source.channel') AS channel
FROM orders
