INSERT INTO staging.officer_shifts (officer_id, shift_start, shift_end)
SELECT h.officer_id,
       staging.parse_source_timestamp(s.shift_start),
       staging.parse_source_timestamp(s.shift_end)
FROM police_source.shifts s
JOIN staging.officers_hub h ON h.department_defined_officer_id = s.badge_no;
