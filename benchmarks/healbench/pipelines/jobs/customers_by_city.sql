-- Customers per country and city.
SELECT
  c.address.country AS country,
  c.address.city,
  COUNT(*) AS customers
FROM customers AS c
GROUP BY c.address.country, c.address.city
