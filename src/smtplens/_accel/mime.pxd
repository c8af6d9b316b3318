# C types for the compiled build of smtplens.bounce.mime (see smtplens/_accel/__init__.py): an augmenting .pxd.
# mime.py stays plain Python; these declarations only make the compiled copy scan a header's lines with C loops
# (positions in C integers, characters as C values). Behaviour is the .py's.

cimport cython

cdef bint _COMPILED

@cython.locals(length=Py_ssize_t, count=Py_ssize_t, report=bint, line=Py_ssize_t, name_end=Py_ssize_t,
               colon=Py_ssize_t, value=Py_ssize_t, end=Py_ssize_t, ch=Py_UCS4, wanted=bint, next_line=Py_ssize_t)
cdef tuple _header_fields(str text, Py_ssize_t pos, Py_ssize_t stop, list fields, frozenset names=*, bint lenient=*)
