INSERT INTO staging.charges (event_id, charge_code, description)
SELECT ar.event_id, trim(c.charge_code), c.description
FROM police_source.charges c
JOIN staging.events_hub e ON e.department_defined_event_id = c.arrest_no
JOIN staging.arrests ar ON ar.event_id = e.event_id;
