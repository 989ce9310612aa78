/*
Functions the populate scripts call. The build creates them in the schema it builds (whatever
schema a script names), so staging_dev's copies never replace the ones staging uses today.
*/

-- The source's spellings of a code ('  Police  Officer', 'POLICE-OFFICER') as a lookup value.
CREATE OR REPLACE FUNCTION staging.normalised_code(raw TEXT)
  RETURNS TEXT
  LANGUAGE sql IMMUTABLE
AS $$
  SELECT coalesce(nullif(trim(BOTH '_' FROM regexp_replace(lower(raw), '[^a-z0-9]+', '_', 'g')), ''), 'unknown')
$$;

-- The source writes times as 'MM/DD/YYYY HH24:MI' text, or leaves them blank.
CREATE OR REPLACE FUNCTION staging.parse_source_timestamp(raw TEXT)
  RETURNS TIMESTAMP
  LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
  IF raw IS NULL OR trim(raw) = '' THEN
    RETURN NULL;
  END IF;
  RETURN to_timestamp(trim(raw), 'MM/DD/YYYY HH24:MI')::TIMESTAMP;
END;
$$;
