-- The page-views pipeline's tables (steps/page_views.py); load_day creates them.
CREATE TABLE IF NOT EXISTS page_view_events (
    ts timestamptz NOT NULL, url text NOT NULL, environment text NOT NULL, user_id bigint NOT NULL,
    first_day date NOT NULL,
    PRIMARY KEY (ts, url, environment, user_id)
);
CREATE TABLE IF NOT EXISTS user_update_events (
    updated_at timestamptz NOT NULL, user_id bigint NOT NULL, email text NOT NULL, name text NOT NULL,
    environment text NOT NULL, first_day date NOT NULL,
    PRIMARY KEY (updated_at, user_id, email, name, environment)
);
CREATE TABLE IF NOT EXISTS page_views_loaded_days (
    day date PRIMARY KEY, keys jsonb NOT NULL, page_views bigint NOT NULL, user_updates bigint NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now()
);
-- What load_day added and build_tables has not applied yet (production rows only).
CREATE TABLE IF NOT EXISTS page_view_delta (
    user_id bigint NOT NULL, url text NOT NULL, ts timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS user_update_delta (
    user_id bigint NOT NULL, email text NOT NULL, updated_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS user_emails (
    user_id bigint PRIMARY KEY, email text NOT NULL, updated_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS user_page_views (
    user_id bigint NOT NULL, email text, url text NOT NULL, count bigint NOT NULL,
    last_viewed timestamptz NOT NULL, PRIMARY KEY (user_id, url)
);
CREATE TABLE IF NOT EXISTS user_page_samples (
    user_id bigint NOT NULL, url text NOT NULL, h text NOT NULL, PRIMARY KEY (user_id, url)
);
CREATE INDEX IF NOT EXISTS user_page_samples_url ON user_page_samples (url);
CREATE TABLE IF NOT EXISTS page_co_views (
    url text NOT NULL, other_url text NOT NULL, users bigint NOT NULL, PRIMARY KEY (url, other_url)
);
-- A page's neighbour list is its first NEIGHBOURS entries here: read, not sorted, per touched page.
CREATE INDEX IF NOT EXISTS page_co_views_ranked ON page_co_views (url, users DESC, other_url);
CREATE TABLE IF NOT EXISTS page_neighbours (
    url text NOT NULL, other_url text NOT NULL, PRIMARY KEY (url, other_url)
);
CREATE TABLE IF NOT EXISTS page_recommendations (
    user_id bigint NOT NULL, email text, recommended_url text NOT NULL, rank integer NOT NULL,
    PRIMARY KEY (user_id, rank)
);
