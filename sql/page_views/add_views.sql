-- load_day: the day's page views (staged in incoming_views) into the event table. A row seen
-- before keeps the earliest day that brought it; only rows new to the event table (xmax = 0 in
-- RETURNING: inserted, not updated) go to the delta, so overlapping logs count once.
WITH added AS (
    INSERT INTO page_view_events AS e (ts, url, environment, user_id, first_day)
    SELECT DISTINCT ts, url, environment, user_id, %(day)s::date FROM incoming_views
    ON CONFLICT (ts, url, environment, user_id) DO UPDATE SET first_day = EXCLUDED.first_day
        WHERE EXCLUDED.first_day < e.first_day
    RETURNING user_id, url, ts, environment, xmax = 0 AS inserted
)
INSERT INTO page_view_delta (user_id, url, ts)
SELECT user_id, url, ts FROM added WHERE inserted AND environment = %(env)s
