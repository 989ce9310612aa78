INSERT INTO staging.complaints (event_id, complaint_origin_code, sustained_flag)
SELECT e.event_id, coalesce(o.code, 0), upper(trim(c.sustained)) = 'Y'
FROM police_source.complaints c
JOIN staging.events_hub e ON e.department_defined_event_id = c.complaint_no
JOIN staging.lookup_event_types et ON et.code = e.event_type_code AND et.value = 'complaint'
LEFT JOIN staging.lookup_complaint_origins o ON o.value = staging.normalised_code(c.origin);
