-- load_day: the day's user updates (staged in incoming_updates), as add_views.sql does views (a
-- few thousand rows a day: ON CONFLICT is simplest here).

-- step: updates
WITH added AS (
    INSERT INTO user_update_events (updated_at, user_id, email, name, environment)
    SELECT DISTINCT updated_at, user_id, email, name, environment FROM incoming_updates
    ON CONFLICT DO NOTHING
    RETURNING user_id, email, updated_at, environment
)
INSERT INTO user_update_delta (user_id, email, updated_at)
SELECT user_id, email, updated_at FROM added WHERE environment = %(env)s;
