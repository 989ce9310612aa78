INSERT INTO staging.officers_hub (department_defined_officer_id, full_name_raw, rank_code, race_code,
                                  gender_code, date_of_birth)
SELECT o.badge_no,
       o.full_name,
       coalesce(r.code, 0),
       coalesce(ra.code, 0),
       coalesce(g.code, 0),
       to_date(nullif(trim(o.birth_date), ''), 'MM/DD/YYYY')
FROM police_source.officers o
LEFT JOIN staging.lookup_ranks r ON r.value = staging.normalised_code(o.rank)
LEFT JOIN staging.lookup_races ra ON ra.value = staging.normalised_code(o.race)
LEFT JOIN staging.lookup_genders g ON g.value = staging.normalised_code(o.gender);
