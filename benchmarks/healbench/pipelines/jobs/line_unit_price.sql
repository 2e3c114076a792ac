-- Net price per unit of each order line (line_total is after discount).
SELECT
  order_id,
  line_no,
  ROUND(line_total / quantity, 2) AS unit_net
FROM order_items
