-- Discounted order lines, with the discount rate as the shop booked it.
SELECT
  order_id,
  line_no,
  discount
FROM order_items
WHERE discount > 0
