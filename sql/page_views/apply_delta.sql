-- build_tables' statements, run in order in one transaction (steps/page_views.py). Each is headed
-- by the step the log times it under. Temporary tables name each intermediate result. Autovacuum
-- never analyses a temporary table, so build_tables does, right after a CREATE TEMP TABLE ... AS
-- fills it (and here for email_changed), so that later statements are planned on real row counts.
-- (That did not cure the recommendations' minutes-long plan on day 3 of bench page_views: the
-- fence at "users to recommend to" did.)

-- step: lock the delta
LOCK TABLE page_view_delta, user_update_delta IN EXCLUSIVE MODE;

-- step: new views
-- (user, page) -> views and latest view brought by the delta
CREATE TEMP TABLE new_views ON COMMIT DROP AS
SELECT user_id, url, count(*) AS views, max(ts) AS last_viewed FROM page_view_delta GROUP BY 1, 2;

-- step: emails
-- users whose latest email changed: latest by time, the smallest address among equals
CREATE TEMP TABLE email_changed (user_id bigint) ON COMMIT DROP;

-- step: emails
WITH latest AS (
    SELECT DISTINCT ON (user_id) user_id, email, updated_at FROM user_update_delta
    ORDER BY user_id, updated_at DESC, email
), changed AS (
    INSERT INTO user_emails AS e (user_id, email, updated_at) SELECT * FROM latest
    ON CONFLICT (user_id) DO UPDATE SET email = EXCLUDED.email, updated_at = EXCLUDED.updated_at
    WHERE EXCLUDED.updated_at > e.updated_at
       OR (EXCLUDED.updated_at = e.updated_at AND EXCLUDED.email < e.email)
    RETURNING user_id
)
INSERT INTO email_changed SELECT user_id FROM changed;

-- step: emails
ANALYZE email_changed;

-- step: new pages
-- (user, page) seen for the first time, with the hash that decides the user's sample
CREATE TEMP TABLE new_pages ON COMMIT DROP AS
SELECT n.user_id, n.url, md5(n.user_id::text || ' ' || n.url) AS h FROM new_views n
WHERE NOT EXISTS (SELECT 1 FROM user_page_views p WHERE p.user_id = n.user_id AND p.url = n.url);

-- step: user_page_views
INSERT INTO user_page_views AS p (user_id, email, url, count, last_viewed)
SELECT n.user_id, e.email, n.url, n.views, n.last_viewed
FROM new_views n LEFT JOIN user_emails e USING (user_id)
ON CONFLICT (user_id, url) DO UPDATE
SET count = p.count + EXCLUDED.count, last_viewed = greatest(p.last_viewed, EXCLUDED.last_viewed);

-- step: emails of earlier rows
UPDATE user_page_views p SET email = e.email FROM email_changed c JOIN user_emails e USING (user_id)
WHERE p.user_id = c.user_id AND p.email IS DISTINCT FROM e.email;

-- step: sample changes
-- pages entering (+1) or leaving (-1) a user's sample: the sample is the bottom-K by hash of the
-- old sample and the new pages together (a page once left out never hashes below it again)
CREATE TEMP TABLE sample_change ON COMMIT DROP AS
WITH candidates AS (
    SELECT user_id, url, h, false AS is_new FROM user_page_samples
    WHERE user_id IN (SELECT user_id FROM new_pages)
    UNION ALL SELECT user_id, url, h, true FROM new_pages
), placed AS (
    SELECT *, row_number() OVER (PARTITION BY user_id ORDER BY h, url) AS position FROM candidates
)
SELECT user_id, url, h, CASE WHEN is_new THEN 1 ELSE -1 END AS change FROM placed
WHERE (is_new AND position <= %(sample)s) OR (NOT is_new AND position > %(sample)s);

-- step: co-view changes
-- co-view counts: +1 per pair of the new sample with an entering page, -1 per pair of the old
-- sample with a leaving one (both directions); the cost is bounded by the sample size per user
CREATE TEMP TABLE co_view_change ON COMMIT DROP AS
WITH old AS (
    SELECT s.user_id, s.url, c.user_id IS NOT NULL AS leaving FROM user_page_samples s
    LEFT JOIN sample_change c ON c.user_id = s.user_id AND c.url = s.url AND c.change = -1
    WHERE s.user_id IN (SELECT user_id FROM sample_change)
), new AS (
    SELECT user_id, url, false AS entering FROM old WHERE NOT leaving
    UNION ALL SELECT user_id, url, true FROM sample_change WHERE change = 1
), pairs AS (
    SELECT a.url, b.url AS other_url, 1 AS change FROM new a JOIN new b
        ON b.user_id = a.user_id AND b.url <> a.url WHERE a.entering OR b.entering
    UNION ALL
    SELECT a.url, b.url, -1 FROM old a JOIN old b
        ON b.user_id = a.user_id AND b.url <> a.url WHERE a.leaving OR b.leaving
)
SELECT url, other_url, sum(change) AS users FROM pairs GROUP BY 1, 2 HAVING sum(change) <> 0;

-- step: co-views
INSERT INTO page_co_views AS c (url, other_url, users)
SELECT url, other_url, users FROM co_view_change
ON CONFLICT (url, other_url) DO UPDATE SET users = c.users + EXCLUDED.users;

-- step: co-views
DELETE FROM page_co_views c USING co_view_change d
WHERE c.url = d.url AND c.other_url = d.other_url AND c.users = 0;

-- step: samples
DELETE FROM user_page_samples s USING sample_change c
WHERE c.change = -1 AND s.user_id = c.user_id AND s.url = c.url;

-- step: samples
INSERT INTO user_page_samples (user_id, url, h)
SELECT user_id, url, h FROM sample_change WHERE change = 1;

-- step: neighbour lists
-- each touched page's most co-viewed pages; then the pages whose list (as a set) changed
CREATE TEMP TABLE fresh_neighbours ON COMMIT DROP AS
SELECT t.url, n.other_url FROM (SELECT DISTINCT url FROM co_view_change) t
CROSS JOIN LATERAL (
    SELECT other_url FROM page_co_views c WHERE c.url = t.url
    ORDER BY users DESC, other_url LIMIT %(neighbours)s
) n;

-- step: neighbour lists
CREATE TEMP TABLE neighbours_changed ON COMMIT DROP AS
SELECT DISTINCT url FROM (
    (SELECT url, other_url FROM fresh_neighbours
     EXCEPT SELECT url, other_url FROM page_neighbours WHERE url IN (SELECT url FROM co_view_change))
    UNION ALL
    (SELECT url, other_url FROM page_neighbours WHERE url IN (SELECT url FROM co_view_change)
     EXCEPT SELECT url, other_url FROM fresh_neighbours)
) d;

-- step: neighbour lists
DELETE FROM page_neighbours WHERE url IN (SELECT url FROM neighbours_changed);

-- step: neighbour lists
INSERT INTO page_neighbours (url, other_url)
SELECT url, other_url FROM fresh_neighbours WHERE url IN (SELECT url FROM neighbours_changed);

-- step: users to recommend to
-- users whose recommendations may differ: new pages, a new email, a changed list of their sample.
-- Their candidates are fenced off (MATERIALIZED) before the anti-join with user_page_views: the
-- planner estimates that anti-join at one row and, unfenced, joined users_to_rank to it by a
-- nested loop over millions of rows (minutes on day 3 of bench page_views).
CREATE TEMP TABLE users_to_rank ON COMMIT DROP AS
SELECT user_id FROM new_pages UNION SELECT user_id FROM email_changed
UNION SELECT s.user_id FROM user_page_samples s JOIN neighbours_changed c USING (url);

-- step: page_recommendations
DELETE FROM page_recommendations WHERE user_id IN (SELECT user_id FROM users_to_rank);

-- step: page_recommendations
INSERT INTO page_recommendations (user_id, email, recommended_url, rank)
WITH candidates AS MATERIALIZED (
    SELECT s.user_id, n.other_url AS url
    FROM users_to_rank r JOIN user_page_samples s USING (user_id)
    JOIN page_neighbours n ON n.url = s.url
), scores AS (
    SELECT user_id, url, count(*) AS lists FROM candidates c
    WHERE NOT EXISTS (SELECT 1 FROM user_page_views p WHERE p.user_id = c.user_id AND p.url = c.url)
    GROUP BY user_id, url
), ranked AS (
    SELECT user_id, url, row_number() OVER (PARTITION BY user_id ORDER BY lists DESC, url) AS rank
    FROM scores
)
SELECT r.user_id, e.email, r.url, r.rank FROM ranked r LEFT JOIN user_emails e USING (user_id)
WHERE r.rank <= %(top)s;

-- step: clear the delta
TRUNCATE page_view_delta, user_update_delta;
