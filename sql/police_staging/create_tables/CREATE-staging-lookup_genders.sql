DROP TABLE IF EXISTS staging.lookup_genders;
CREATE TABLE staging.lookup_genders (
  code        INT PRIMARY KEY,
  value       VARCHAR NOT NULL UNIQUE, -- what the populate scripts match source values against
  description VARCHAR
);
