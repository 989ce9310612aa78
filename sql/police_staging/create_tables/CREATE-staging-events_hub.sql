-- One row per event of any type; the event tables share its event_id.
DROP TABLE IF EXISTS staging.events_hub CASCADE;
CREATE TABLE staging.events_hub (
  event_id                    SERIAL PRIMARY KEY,
  officer_id                  INT NOT NULL REFERENCES staging.officers_hub (officer_id),
  event_type_code             INT NOT NULL REFERENCES staging.lookup_event_types (code),
  department_defined_event_id VARCHAR NOT NULL, -- the source's report number
  event_datetime              TIMESTAMP,
  last_modified               TIMESTAMP DEFAULT now(),
  UNIQUE (event_type_code, department_defined_event_id)
);
