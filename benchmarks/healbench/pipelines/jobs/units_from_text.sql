-- Units per order. The shop system sends quantities as text.
SELECT
  order_id,
  SUM(CAST(qty_text AS INT)) AS units,
  COUNT(*) AS lines
FROM order_items
GROUP BY order_id
