-- Average net price per unit of every order (line_total is after discount).
SELECT
  order_id,
  SUM(quantity) AS units,
  ROUND(SUM(line_total) / SUM(quantity), 2) AS avg_unit_net
FROM order_items
GROUP BY order_id
