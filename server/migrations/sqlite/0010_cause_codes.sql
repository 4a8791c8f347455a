-- Cause codes (protocol schema version 4): the cause of a transition or an alert as a
-- code with parameters, JSON (`{"code":"tcp.refused","params":{…}}`), next to its words.
-- NULL for rows from agents that send no codes and rows stored before codes existed.
ALTER TABLE transitions ADD COLUMN cause_code TEXT;
ALTER TABLE alerts ADD COLUMN cause_code TEXT;
