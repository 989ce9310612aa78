DROP TABLE IF EXISTS staging.complaints;
CREATE TABLE staging.complaints (
  event_id              INT PRIMARY KEY REFERENCES staging.events_hub (event_id) ON DELETE CASCADE,
  complaint_origin_code INT REFERENCES staging.lookup_complaint_origins (code),
  sustained_flag        BOOL
);
