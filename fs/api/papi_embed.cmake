# cmake -DIN=FILE -DOUT=FILE.c -DNAME=SYMBOL -P papi_embed.cmake: FILE's bytes as the C array
# SYMBOL (NUL-terminated) and SYMBOL_len, so the OpenAPI document is part of the binary.
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" hex "${hex}")
file(WRITE ${OUT} "/* Generated from ${IN} by papi_embed.cmake: do not edit. */\n#include <stddef.h>\n"
	"const char ${NAME}[] = {\n${hex}0};\nconst size_t ${NAME}_len = sizeof(${NAME}) - 1;\n")
