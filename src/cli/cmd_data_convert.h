/* cmd_data_convert: `csft data convert --to mindrecord ...` (see cmd_data_convert.c). */
#pragma once

/* argv[0] is "convert". Returns the exit status (0 ok, 1 data error, 2 usage). */
int cmd_data_convert(int argc, char **argv);
