-- build_tables' statements, run in order in one transaction (steps/page_views.py). Each is headed
-- by the step the log times it under. Temporary tables name each intermediate result. Autovacuum
-- never analyses a temporary table, so build_tables does, right after a CREATE TEMP TABLE ... AS
-- fills it, so that later statements are planned on real row counts.
--
-- The tables that grow with the days (visit_samples, user_page_counts) are only ever read by key,
-- for the day's rows: through LATERAL or a scalar subquery, which the planner cannot turn into a
-- scan of the whole table. Left to choose, it did, on some days and not others, as the tables'
-- statistics went stale: on day 29 of bench page_views the recommendations took 273 s, not 4.

-- step: lock the delta
LOCK TABLE page_view_delta, user_update_delta IN EXCLUSIVE MODE;

-- step: lock the delta
-- A day's build hashes and sorts a few million rows: in memory, not spilled in 4 MB pieces.
SET LOCAL work_mem = '256MB';

-- step: pages
INSERT INTO pages (page_id, url)
SELECT DISTINCT page_id, url FROM page_view_delta d
WHERE NOT EXISTS (SELECT 1 FROM pages p WHERE p.url = d.url);

-- step: emails
-- each user's latest email: latest by time, the smallest address among equals
INSERT INTO user_emails AS e (user_id, email, updated_at)
SELECT DISTINCT ON (user_id) user_id, email, updated_at FROM user_update_delta
ORDER BY user_id, updated_at DESC, email
ON CONFLICT (user_id) DO UPDATE SET email = EXCLUDED.email, updated_at = EXCLUDED.updated_at
WHERE EXCLUDED.updated_at > e.updated_at OR (EXCLUDED.updated_at = e.updated_at AND EXCLUDED.email < e.email);

-- step: counts
-- (user, page) seen for the first time (inserted, not updated: xmax = 0), whose users'
-- recommendations must no longer offer it
CREATE TEMP TABLE new_pages (user_id bigint, page_id bigint) ON COMMIT DROP;

-- step: counts
WITH added AS (
    INSERT INTO user_page_counts AS c (user_id, page_id, count, last_viewed)
    SELECT user_id, page_id, count(*), max(ts) FROM page_view_delta GROUP BY 1, 2
    ON CONFLICT (user_id, page_id) DO UPDATE
    SET count = c.count + EXCLUDED.count, last_viewed = greatest(c.last_viewed, EXCLUDED.last_viewed)
    RETURNING user_id, page_id, xmax = 0 AS inserted
)
INSERT INTO new_pages SELECT user_id, page_id FROM added WHERE inserted;

-- step: counts
ANALYZE new_pages;

-- step: sample changes
-- pages entering (+1) or leaving (-1) a visit's sample, the VISIT_PAGES of the visit's pages with
-- the smallest hash: the new sample is the smallest of the old sample and the pages arriving (a
-- page of the visit seen before and left out already hashes above a full sample)
CREATE TEMP TABLE sample_change ON COMMIT DROP AS
WITH visit_pages AS (
    SELECT DISTINCT user_id, (ts AT TIME ZONE 'UTC')::date AS day, page_id FROM page_view_delta
), old_samples AS MATERIALIZED (
    SELECT s.* FROM (SELECT DISTINCT user_id, day FROM visit_pages) v
    CROSS JOIN LATERAL (
        SELECT user_id, day, page_id, h FROM visit_samples s WHERE s.user_id = v.user_id AND s.day = v.day
    ) s
), arriving AS (
    SELECT v.*, page_views_hash(concat_ws(' ', v.user_id, to_char(v.day, 'YYYY-MM-DD'), v.page_id)) AS h
    FROM visit_pages v
    WHERE NOT EXISTS (SELECT 1 FROM old_samples o WHERE (o.user_id, o.day, o.page_id) = (v.user_id, v.day, v.page_id))
), candidates AS (
    SELECT user_id, day, page_id, h, false AS is_new FROM old_samples
    UNION ALL SELECT user_id, day, page_id, h, true FROM arriving
), placed AS (
    SELECT *, row_number() OVER (PARTITION BY user_id, day ORDER BY h, page_id) AS position FROM candidates
)
SELECT user_id, day, page_id, h, CASE WHEN is_new THEN 1 ELSE -1 END AS change FROM placed
WHERE (is_new AND position <= %(sample)s) OR (NOT is_new AND position > %(sample)s);

-- step: co-view changes
-- co-view counts of each pair (page_id < other_id): +1 per pair of the new sample with an
-- entering page, -1 per pair of the old sample with a leaving one; a visit costs at most
-- VISIT_PAGES * (VISIT_PAGES - 1) / 2 pairs
CREATE TEMP TABLE co_view_change ON COMMIT DROP AS
WITH old AS (
    SELECT s.user_id, s.day, s.page_id, c.page_id IS NOT NULL AS leaving
    FROM (SELECT DISTINCT user_id, day FROM sample_change) v
    CROSS JOIN LATERAL (
        SELECT user_id, day, page_id FROM visit_samples s WHERE s.user_id = v.user_id AND s.day = v.day
    ) s
    LEFT JOIN sample_change c
        ON (c.user_id, c.day, c.page_id) = (s.user_id, s.day, s.page_id) AND c.change = -1
), new AS (
    SELECT user_id, day, page_id, false AS entering FROM old WHERE NOT leaving
    UNION ALL SELECT user_id, day, page_id, true FROM sample_change WHERE change = 1
), pairs AS (
    SELECT a.page_id, b.page_id AS other_id, 1 AS change FROM new a JOIN new b
        ON (b.user_id, b.day) = (a.user_id, a.day) AND a.page_id < b.page_id WHERE a.entering OR b.entering
    UNION ALL
    SELECT a.page_id, b.page_id, -1 FROM old a JOIN old b
        ON (b.user_id, b.day) = (a.user_id, a.day) AND a.page_id < b.page_id WHERE a.leaving OR b.leaving
)
SELECT page_id, other_id, sum(change) AS visits FROM pairs GROUP BY 1, 2 HAVING sum(change) <> 0;

-- step: co-views
-- the changed pairs' counts after the change, in both directions
CREATE TEMP TABLE co_view_now (page_id bigint, other_id bigint, visits bigint) ON COMMIT DROP;

-- step: co-views
WITH applied AS (
    INSERT INTO page_co_views AS c (page_id, other_id, visits)
    SELECT page_id, other_id, visits FROM co_view_change
    ON CONFLICT (page_id, other_id) DO UPDATE SET visits = c.visits + EXCLUDED.visits
    RETURNING page_id, other_id, visits
)
INSERT INTO co_view_now SELECT page_id, other_id, visits FROM applied
UNION ALL SELECT other_id, page_id, visits FROM applied;

-- step: co-views
ANALYZE co_view_now;

-- step: co-views
DELETE FROM page_co_views c USING co_view_change d
WHERE (c.page_id, c.other_id) = (d.page_id, d.other_id) AND c.visits = 0;

-- step: samples
DELETE FROM visit_samples s USING sample_change c
WHERE c.change = -1 AND (s.user_id, s.day, s.page_id) = (c.user_id, c.day, c.page_id);

-- step: samples
INSERT INTO visit_samples (user_id, day, page_id, h)
SELECT user_id, day, page_id, h FROM sample_change WHERE change = 1;

-- step: latest visits
-- users whose latest visit is new or has a changed sample: its sample becomes their seeds
CREATE TEMP TABLE reseeded (user_id bigint) ON COMMIT DROP;

-- step: latest visits
WITH latest AS (
    SELECT DISTINCT ON (user_id) user_id, day FROM sample_change ORDER BY user_id, day DESC
), seeded AS (
    INSERT INTO user_last_visits AS l (user_id, day, pages)
    SELECT user_id, day, (SELECT array_agg(s.page_id ORDER BY s.page_id) FROM visit_samples s
                          WHERE s.user_id = latest.user_id AND s.day = latest.day)
    FROM latest
    ON CONFLICT (user_id) DO UPDATE SET day = EXCLUDED.day, pages = EXCLUDED.pages WHERE EXCLUDED.day >= l.day
    RETURNING user_id
)
INSERT INTO reseeded SELECT user_id FROM seeded;

-- step: latest visits
ANALYZE reseeded;

-- step: neighbour lists
-- each touched page's NEIGHBOURS most co-viewed pages. Where counts only grew, they are among its
-- old list and its changed pairs (a page outside both still counts no more than the old list's
-- last); a page one of whose pairs lost visits is ranked again from all its pairs.
CREATE TEMP TABLE fresh_neighbours ON COMMIT DROP AS
WITH recount AS (
    SELECT page_id FROM co_view_change WHERE visits < 0 UNION SELECT other_id FROM co_view_change WHERE visits < 0
), candidates AS (
    SELECT n.page_id, n.other_id, coalesce(c.visits, n.visits) AS visits FROM page_neighbours n
    LEFT JOIN co_view_now c USING (page_id, other_id)
    WHERE n.page_id IN (SELECT page_id FROM co_view_now) AND n.page_id NOT IN (SELECT page_id FROM recount)
    UNION
    SELECT page_id, other_id, visits FROM co_view_now WHERE page_id NOT IN (SELECT page_id FROM recount)
    UNION ALL
    SELECT page_id, other_id, visits FROM page_co_views WHERE page_id IN (SELECT page_id FROM recount)
    UNION ALL
    SELECT other_id, page_id, visits FROM page_co_views WHERE other_id IN (SELECT page_id FROM recount)
), placed AS (
    SELECT *, row_number() OVER (PARTITION BY page_id ORDER BY visits DESC, other_id) AS position
    FROM candidates WHERE visits > 0
)
SELECT page_id, other_id, visits FROM placed WHERE position <= %(neighbours)s;

-- step: neighbour lists
-- the touched pages' old lists, and the pages whose list differs: in its counts (to write it
-- again), in its pages (whose users are ranked again)
CREATE TEMP TABLE old_neighbours ON COMMIT DROP AS
SELECT * FROM page_neighbours WHERE page_id IN (SELECT page_id FROM co_view_now);

-- step: neighbour lists
CREATE TEMP TABLE neighbours_rewritten ON COMMIT DROP AS
SELECT DISTINCT page_id FROM (
    (TABLE fresh_neighbours EXCEPT TABLE old_neighbours) UNION ALL (TABLE old_neighbours EXCEPT TABLE fresh_neighbours)
) d;

-- step: neighbour lists
CREATE TEMP TABLE neighbours_changed ON COMMIT DROP AS
SELECT DISTINCT page_id FROM (
    (SELECT page_id, other_id FROM fresh_neighbours EXCEPT SELECT page_id, other_id FROM old_neighbours)
    UNION ALL
    (SELECT page_id, other_id FROM old_neighbours EXCEPT SELECT page_id, other_id FROM fresh_neighbours)
) d;

-- step: neighbour lists
DELETE FROM page_neighbours WHERE page_id IN (SELECT page_id FROM neighbours_rewritten);

-- step: neighbour lists
INSERT INTO page_neighbours (page_id, other_id, visits)
SELECT * FROM fresh_neighbours WHERE page_id IN (SELECT page_id FROM neighbours_rewritten);

-- step: users to recommend to
-- users whose recommendations may differ: a page newly seen, new seeds, a changed list of a seed
CREATE TEMP TABLE users_to_rank ON COMMIT DROP AS
SELECT user_id FROM new_pages UNION SELECT user_id FROM reseeded
UNION SELECT l.user_id FROM user_last_visits l CROSS JOIN unnest(l.pages) AS seed(page_id)
      WHERE seed.page_id IN (SELECT page_id FROM neighbours_changed);

-- step: page_recommendations
DELETE FROM page_recommendation_ranks WHERE user_id IN (SELECT user_id FROM users_to_rank);

-- step: page_recommendations
-- Each page's list as one row, for the ranking's look-ups by seed. page_neighbours itself has just
-- been rewritten for most pages, and a look-up there also visits the row versions this
-- transaction deleted (3.6 million heap fetches on day 3 of bench page_views: 1.7 s against 1.1).
CREATE TEMP TABLE neighbour_lists ON COMMIT DROP AS
SELECT page_id, array_agg(other_id) AS others FROM page_neighbours GROUP BY page_id;

-- step: page_recommendations
ALTER TABLE neighbour_lists ADD PRIMARY KEY (page_id);

-- step: page_recommendations
-- Per user, candidates in rank order (most lists first, ties by page id), checked against the
-- user's pages one by one until RECOMMENDATIONS_PER_USER unseen are found: the check sits above
-- the sort (OFFSET 0 keeps it there) and is a scalar subquery, a key look-up per candidate checked,
-- so a user costs a few look-ups, not one per candidate (192,595 look-ups against 785,460 for
-- 40,000 users on day 3 of bench page_views).
INSERT INTO page_recommendation_ranks (user_id, rank, page_id)
SELECT l.user_id, row_number() OVER (PARTITION BY l.user_id ORDER BY top.lists DESC, top.page_id), top.page_id
FROM users_to_rank r JOIN user_last_visits l USING (user_id)
CROSS JOIN LATERAL (
    SELECT c.* FROM (
        SELECT candidate.page_id, count(*) AS lists
        FROM unnest(l.pages) AS seed(page_id) JOIN neighbour_lists n ON n.page_id = seed.page_id
        CROSS JOIN unnest(n.others) AS candidate(page_id)
        GROUP BY 1 ORDER BY lists DESC, page_id OFFSET 0
    ) c
    WHERE (SELECT true FROM user_page_counts p WHERE (p.user_id, p.page_id) = (l.user_id, c.page_id)) IS NULL
    LIMIT %(top)s
) top;

-- step: clear the delta
TRUNCATE page_view_delta, user_update_delta;
