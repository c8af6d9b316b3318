# C types for the compiled build of smtplens.bounce.mime (see smtplens/_accel/__init__.py): an augmenting .pxd.
# mime.py stays plain Python; these declarations only make the compiled copy scan a header's lines with C loops
# (positions in C integers, characters as C values) and hold a parsed mail's classes as extension types.
# Behaviour is the .py's.

cimport cython

cdef bint _COMPILED

@cython.locals(length=Py_ssize_t, count=Py_ssize_t, report=bint, line=Py_ssize_t, name_end=Py_ssize_t,
               colon=Py_ssize_t, value=Py_ssize_t, end=Py_ssize_t, ch=Py_UCS4, wanted=bint, next_line=Py_ssize_t)
cdef tuple _header_fields(str text, Py_ssize_t pos, Py_ssize_t stop, list fields, frozenset names=*, bint lenient=*)
@cython.locals(size=Py_ssize_t, out=bytearray, src="const unsigned char*", dst="unsigned char*", at=Py_ssize_t,
               kept=Py_ssize_t, byte="unsigned char")
cdef object _lf_line_ends(object data)

# The classes of a parsed mail as extension types: their attributes are C struct fields, read and set without a
# dictionary lookup (the .py declares the same names as __slots__; every attribute stays readable from Python).
cdef class Headers:
    cdef public list _fields
    cdef public object _index

cdef class Part:
    cdef public object _budget
    cdef public object _children
    cdef public object _depth
    cdef public Py_ssize_t _end
    cdef public Py_ssize_t _head
    cdef public str _src
    cdef public Py_ssize_t _start
    cdef public object _text
    cdef public str ctype
    cdef public Headers headers
    cdef public str maintype
    cdef public dict params

cdef class Mail:
    cdef public dict _found
    cdef public dict _heads
    cdef public dict _lowered
    cdef public object _original
    cdef public bint _original_found
    cdef public object _parts
    cdef public object _text
    cdef public str raw
    cdef public Part root
