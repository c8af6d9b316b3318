# C types for the compiled build of smtplens.reply (see smtplens/_accel/__init__.py): an augmenting .pxd.
# reply.py stays plain Python; these declarations only make the compiled copy call its helpers as C functions,
# keep its constants in C variables and its positions in C integers. Behaviour is the .py's.

cimport cython

cdef object _SIMPLE, _LINE, _LEADING_ENH, _ANY_ENH, _CODE_WITH_ENH, _SEARCH_CODE, _IN_REPLY_TO, _AFTER_CMD
cdef object _SENDMAIL_CMD, _HOST_AT, _REMOTE_MTA, _TALKING, _MARKERS, _CODE_STARTS, _FAILURE_AFTER_BANNER
cdef tuple _GREETING_PHRASES, _HOST_WORDS, _MARKER_WORDS, _NO_FINDINGS
cdef dict _COMMANDS, _CLASS_ENH_CORE, _PREFIXES, _FINDINGS, _CLASS_BY_DIGIT
cdef object _new_reply
cdef bytes _SIGN_TABLE
cdef tuple _SIGN_MASKS
cdef dict _SIGN_PAIRS, _SIGN
cdef long _ALL_SIGNS, _S_REPLY_TO, _S_BRACKET, _S_REMOTE_MTA, _S_TALKING, _S_AFTER_ERROR, _S_SENDMAIL, _S_GREETING
cdef long _S_MARKER_ANY
cdef bint _COMPILED

ctypedef const unsigned char* _Cells

@cython.locals(table=_Cells, signs=long, prev=Py_ssize_t, code=Py_ssize_t, cell=Py_ssize_t, ch=Py_UCS4)
cdef long _sign_scan(str lower) except? -2
cdef long _signs(str lower) except? -2

@cython.locals(at=Py_ssize_t)
cdef Py_ssize_t _scan_start(str text, str lower, str word, Py_ssize_t back=*)
@cython.locals(at=Py_ssize_t)
cdef Py_ssize_t _in_reply_to_start(str text, str lower)
cdef object _search_from(object pattern, str text, Py_ssize_t start)
cdef object _stage_from(str cmd)
cdef object _find_stage(str text, str lower, long signs)
cdef bint _holds_any(str text, tuple words) except -1
@cython.locals(last=Py_ssize_t, at=Py_ssize_t, word=str)
cdef tuple _find_host(str text, str lower, long signs)
@cython.locals(offset=Py_ssize_t, body=str)
cdef tuple _body(str text, str lower, long signs)
@cython.locals(start=Py_ssize_t, at=Py_ssize_t, word=str)
cdef Py_ssize_t _markers_start(str text, str lower, long signs)
@cython.locals(start=Py_ssize_t)
cdef str _strip_in_reply_to(str body)
cdef tuple _split_rest(str rest)
@cython.locals(number=Py_ssize_t, finished=bint, lines=list, raw_lines=list, raw=str)
cdef object _parse_lines(str body, list problems, list notes, bint plain)
cdef Py_ssize_t _octets(str line) except -1
@cython.locals(line=str)
cdef list _unfold_inline(object basic, object enhanced, list lines)
cdef object _line_prefix(str basic, object enhanced)
@cython.locals(pieces=list, last=Py_ssize_t, pos=Py_ssize_t, at=Py_ssize_t, blanks=Py_ssize_t)
cdef list _split_at_codes(str line, object prefix)
@cython.locals(starts=list)
cdef tuple _search_anywhere(str body, list problems)
cdef list _text_lines(str text)
@cython.locals(starts=list)
cdef list _code_starts(str text)
@cython.locals(starts=list, at=Py_ssize_t, ch=Py_UCS4, prev=Py_UCS4)
cdef list _code_starts_scan(str text)
@cython.locals(tried=Py_ssize_t, at=Py_ssize_t, start=Py_ssize_t)
cdef object _first_match(object pattern, str text, list starts, Py_ssize_t back, Py_ssize_t pos=*)
@cython.locals(tried=Py_ssize_t, code_at=Py_ssize_t, blanks=Py_ssize_t, start=Py_ssize_t)
cdef object _search_code(str body, list starts)
@cython.locals(starts=list)
cdef object _enhanced_in_text(object basic, object enhanced, str body)
cdef _check(object basic, object enhanced, list problems, list notes)
@cython.locals(key=tuple, found=tuple)
cdef tuple _code_findings(object basic, object enhanced)
cdef str _normalise_input(object text, list problems)
@cython.locals(source=str, lower=str, body=str, problems=list, notes=list, signs=long)
cdef object _parse_general(object text, bint strict=*)
cdef str _after_banner(str body)
cdef bint _is_plain_line(str text) except -1
@cython.locals(body=str, rest=str, problems=tuple, notes=tuple)
cdef object _parse_simple(str text, str lower, long signs, object m, bint strict)
@cython.locals(warnings=tuple)
cdef object _finish(str source, str lower, long signs, str body, object basic, object enhanced, list lines, list problems, list notes, bint strict)
