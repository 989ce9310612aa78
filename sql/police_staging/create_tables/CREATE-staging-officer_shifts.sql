DROP TABLE IF EXISTS staging.officer_shifts;
CREATE TABLE staging.officer_shifts (
  shift_id     SERIAL PRIMARY KEY,
  officer_id   INT NOT NULL REFERENCES staging.officers_hub (officer_id),
  shift_start  TIMESTAMP NOT NULL,
  shift_end    TIMESTAMP,
  CHECK (shift_end IS NULL OR shift_end > shift_start)
);
CREATE INDEX ON staging.officer_shifts (officer_id, shift_start);
