-- The page-views pipeline's tables (steps/page_views.py); load_day creates them.

-- A page's id: the first 8 bytes of the md5 of its url, so that the same url has the same id
-- whatever order the days were loaded in (the tables stay identical); pages.url being unique and
-- page_id the key, two urls with the same id would fail the load rather than merge.
CREATE OR REPLACE FUNCTION page_views_hash(text) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN ('x' || left(md5($1), 16))::bit(64)::bigint;

-- The first layout (until 2026-12) kept email and url text in the built tables and a first_day on
-- each event: its built tables go, and the last statement below queues every event again.
DO $$
BEGIN
    IF (SELECT relkind FROM pg_class WHERE oid = to_regclass('user_page_views')) = 'r' THEN
        DROP TABLE user_page_views, page_recommendations, user_page_samples, page_co_views,
            page_neighbours, page_view_delta, user_update_delta, user_emails;
        ALTER TABLE page_view_events DROP COLUMN first_day;
        ALTER TABLE user_update_events DROP COLUMN first_day;
    END IF;
END $$;

CREATE TABLE IF NOT EXISTS page_view_events (
    ts timestamptz NOT NULL, url text NOT NULL, environment text NOT NULL, user_id bigint NOT NULL,
    PRIMARY KEY (ts, url, environment, user_id)
);
CREATE TABLE IF NOT EXISTS user_update_events (
    updated_at timestamptz NOT NULL, user_id bigint NOT NULL, email text NOT NULL, name text NOT NULL,
    environment text NOT NULL,
    PRIMARY KEY (updated_at, user_id, email, name, environment)
);
CREATE TABLE IF NOT EXISTS page_views_loaded_days (
    day date PRIMARY KEY, keys jsonb NOT NULL, page_views bigint NOT NULL, user_updates bigint NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now()
);
-- What load_day added and build_tables has not applied yet (production rows only).
CREATE TABLE IF NOT EXISTS page_view_delta (
    user_id bigint NOT NULL, page_id bigint NOT NULL, url text NOT NULL, ts timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS user_update_delta (
    user_id bigint NOT NULL, email text NOT NULL, updated_at timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS pages (page_id bigint PRIMARY KEY, url text NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS user_emails (
    user_id bigint PRIMARY KEY, email text NOT NULL, updated_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS user_page_counts (
    user_id bigint NOT NULL, page_id bigint NOT NULL, count bigint NOT NULL,
    last_viewed timestamptz NOT NULL, PRIMARY KEY (user_id, page_id)
) WITH (fillfactor = 80);  -- room for HOT updates of count and last_viewed
-- Each visit's (user and UTC day's) sample: its VISIT_PAGES pages of smallest hash h.
CREATE TABLE IF NOT EXISTS visit_samples (
    user_id bigint NOT NULL, day date NOT NULL, page_id bigint NOT NULL, h bigint NOT NULL,
    PRIMARY KEY (user_id, day, page_id)
);
-- Each user's latest visit and its sample (the seeds their recommendations start from): a row per
-- user, so that finding users by seed or seeds by user never reads the visits of other days.
CREATE TABLE IF NOT EXISTS user_last_visits (user_id bigint PRIMARY KEY, day date NOT NULL, pages bigint[] NOT NULL);
-- Each pair once (page_id < other_id). No index holds visits, so that most of a day's updates are
-- HOT (no index entry rewritten; room left by the fillfactor): 2.7 s against 4.9 s for a day's
-- 420,000 pair changes with a (page_id, visits) index beside the key.
CREATE TABLE IF NOT EXISTS page_co_views (
    page_id bigint NOT NULL, other_id bigint NOT NULL, visits bigint NOT NULL,
    PRIMARY KEY (page_id, other_id), CHECK (page_id < other_id)
) WITH (fillfactor = 70);
CREATE INDEX IF NOT EXISTS page_co_views_other ON page_co_views (other_id);
-- Each page's NEIGHBOURS most co-viewed pages, with their counts (kept current: a count changes
-- only on a day that touches the page, and then its list is written again).
CREATE TABLE IF NOT EXISTS page_neighbours (
    page_id bigint NOT NULL, other_id bigint NOT NULL, visits bigint NOT NULL, PRIMARY KEY (page_id, other_id)
);
CREATE TABLE IF NOT EXISTS page_recommendation_ranks (
    user_id bigint NOT NULL, rank integer NOT NULL, page_id bigint NOT NULL, PRIMARY KEY (user_id, rank)
);

-- The two outputs. Views, so that a changed email is one row in user_emails, not a rewrite of
-- every row of the user's (hundreds after a few months).
CREATE OR REPLACE VIEW user_page_views AS
SELECT c.user_id, e.email, p.url, c.count, c.last_viewed
FROM user_page_counts c JOIN pages p USING (page_id) LEFT JOIN user_emails e USING (user_id);

CREATE OR REPLACE VIEW page_recommendations AS
SELECT r.user_id, e.email, p.url AS recommended_url, r.rank
FROM page_recommendation_ranks r JOIN pages p USING (page_id) LEFT JOIN user_emails e USING (user_id);

-- Built tables empty and nothing queued while production events exist (the first layout's tables
-- were dropped above, or someone emptied them): the next build starts from the events, the record.
INSERT INTO page_view_delta (user_id, page_id, url, ts)
SELECT user_id, page_views_hash(url), url, ts FROM page_view_events
WHERE environment = 'production'
  AND NOT EXISTS (SELECT 1 FROM user_page_counts) AND NOT EXISTS (SELECT 1 FROM page_view_delta);

INSERT INTO user_update_delta (user_id, email, updated_at)
SELECT user_id, email, updated_at FROM user_update_events
WHERE environment = 'production'
  AND NOT EXISTS (SELECT 1 FROM user_emails) AND NOT EXISTS (SELECT 1 FROM user_update_delta);
