DROP TABLE IF EXISTS staging.lookup_ranks;
CREATE TABLE staging.lookup_ranks (
  code        INT PRIMARY KEY,
  value       VARCHAR NOT NULL UNIQUE, -- what the populate scripts match source values against
  description VARCHAR
);
