INSERT INTO staging.arrests (event_id, arrest_type_code, suspect_age, felony_flag)
SELECT e.event_id, coalesce(t.code, 0), a.suspect_age, upper(trim(a.felony)) = 'Y'
FROM police_source.arrests a
JOIN staging.events_hub e ON e.department_defined_event_id = a.arrest_no
JOIN staging.lookup_event_types et ON et.code = e.event_type_code AND et.value = 'arrest'
LEFT JOIN staging.lookup_arrest_types t ON t.value = staging.normalised_code(a.arrest_type);
