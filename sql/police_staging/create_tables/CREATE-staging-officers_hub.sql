-- One row per officer: the hub the events and the officer tables hang from.
DROP TABLE IF EXISTS staging.officers_hub CASCADE;
CREATE TABLE staging.officers_hub (
  officer_id                    SERIAL PRIMARY KEY,
  department_defined_officer_id VARCHAR NOT NULL UNIQUE, -- badge number in the source
  full_name_raw                 VARCHAR,                 -- as the source spells it
  first_name                    VARCHAR,                 -- filled by CLEANUP-staging-officers_hub.py
  last_name                     VARCHAR,                 -- idem
  rank_code                     INT REFERENCES staging.lookup_ranks (code),
  race_code                     INT REFERENCES staging.lookup_races (code),
  gender_code                   INT REFERENCES staging.lookup_genders (code),
  date_of_birth                 DATE,
  last_modified                 TIMESTAMP DEFAULT now()
);
