-- Version 5: a message row holds its body inline up to about 8 KB. Below that, an insert
-- writes no TOAST rows and releasing the body deletes none; larger bodies still go out of
-- line, uncompressed (STORAGE EXTERNAL, version 1).
ALTER TABLE messages SET (toast_tuple_target = 8160);
