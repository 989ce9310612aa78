DROP TABLE IF EXISTS staging.use_of_force;
CREATE TABLE staging.use_of_force (
  event_id             INT PRIMARY KEY REFERENCES staging.events_hub (event_id) ON DELETE CASCADE,
  force_type_code      INT REFERENCES staging.lookup_force_types (code),
  officer_injured_flag BOOL
);
