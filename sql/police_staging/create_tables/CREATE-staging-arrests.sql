DROP TABLE IF EXISTS staging.arrests CASCADE;
CREATE TABLE staging.arrests (
  event_id         INT PRIMARY KEY REFERENCES staging.events_hub (event_id) ON DELETE CASCADE,
  arrest_type_code INT REFERENCES staging.lookup_arrest_types (code),
  suspect_age      INT,
  felony_flag      BOOL
);
