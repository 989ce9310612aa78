-- Charges hang from arrests: lookup_ranks <- officers_hub <- events_hub <- arrests <- charges.
DROP TABLE IF EXISTS staging.charges;
CREATE TABLE staging.charges (
  charge_id   SERIAL PRIMARY KEY,
  event_id    INT NOT NULL REFERENCES staging.arrests (event_id) ON DELETE CASCADE,
  charge_code VARCHAR NOT NULL, -- statute code, as written in the source
  description VARCHAR
);
