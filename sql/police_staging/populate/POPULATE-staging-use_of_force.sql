INSERT INTO staging.use_of_force (event_id, force_type_code, officer_injured_flag)
SELECT e.event_id, coalesce(t.code, 0), upper(trim(f.officer_injured)) = 'Y'
FROM police_source.force_reports f
JOIN staging.events_hub e ON e.department_defined_event_id = f.report_no
JOIN staging.lookup_event_types et ON et.code = e.event_type_code AND et.value = 'use_of_force'
LEFT JOIN staging.lookup_force_types t ON t.value = staging.normalised_code(f.force_type);
