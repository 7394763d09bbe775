-- The course's seed users, added only where their handle is missing, so a re-run changes nothing.
INSERT INTO public.users (display_name, handle, email, cognito_user_id)
SELECT v.display_name, v.handle, v.email, 'MOCK'
FROM (VALUES
  ('Yahya Abulhaj', 'yaya2devops', 'yaya@example.com'),
  ('Andrew Bayko', 'bayko', 'bayko@example.com')
) AS v(display_name, handle, email)
WHERE NOT EXISTS (SELECT 1 FROM public.users u WHERE u.handle = v.handle);
