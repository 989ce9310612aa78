DROP TABLE IF EXISTS staging.lookup_races;
CREATE TABLE staging.lookup_races (
  code        INT PRIMARY KEY,
  value       VARCHAR NOT NULL UNIQUE, -- what the populate scripts match source values against
  description VARCHAR
);
