-- wrk script for the gateway benchmark: POST a probe record (the URL names the route).
-- The body is the same each time: without an Idempotency-Key every POST is a new command, and
-- a static request keeps wrk's own CPU (on the same cores as the gateway) as low as for the
-- bare route it is compared with. A per-request Lua body cost about 3 points of the ratio.
wrk.method = "POST"
wrk.body = '{"key":"bench","value":1}'
wrk.headers["Content-Type"] = "application/json"
