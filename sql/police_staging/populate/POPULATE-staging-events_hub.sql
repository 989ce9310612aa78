-- Every arrest, complaint and use-of-force report becomes one event of the officer it names.
INSERT INTO staging.events_hub (officer_id, event_type_code, department_defined_event_id, event_datetime)
SELECT h.officer_id, t.code, e.report_no, staging.parse_source_timestamp(e.reported_at)
FROM (
  SELECT badge_no, 'arrest' AS event_type, arrest_no AS report_no, arrest_time AS reported_at
  FROM police_source.arrests
  UNION ALL
  SELECT badge_no, 'complaint', complaint_no, received_time FROM police_source.complaints
  UNION ALL
  SELECT badge_no, 'use_of_force', report_no, incident_time FROM police_source.force_reports
) e
JOIN staging.officers_hub h ON h.department_defined_officer_id = e.badge_no
JOIN staging.lookup_event_types t ON t.value = e.event_type;
