-- load_day: the day's user updates (staged in incoming_updates), as add_views.sql does views.
WITH added AS (
    INSERT INTO user_update_events AS e (updated_at, user_id, email, name, environment, first_day)
    SELECT DISTINCT updated_at, user_id, email, name, environment, %(day)s::date FROM incoming_updates
    ON CONFLICT (updated_at, user_id, email, name, environment) DO UPDATE SET first_day = EXCLUDED.first_day
        WHERE EXCLUDED.first_day < e.first_day
    RETURNING user_id, email, updated_at, environment, xmax = 0 AS inserted
)
INSERT INTO user_update_delta (user_id, email, updated_at)
SELECT user_id, email, updated_at FROM added WHERE inserted AND environment = %(env)s
