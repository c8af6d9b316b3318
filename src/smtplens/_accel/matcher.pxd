# C types for the compiled build of smtplens.classifier.matcher (see smtplens/_accel/__init__.py): an augmenting
# .pxd. matcher.py stays plain Python; here Matcher becomes an extension type whose scan loop keeps positions in C
# integers. Behaviour is the .py's.

cimport cython

cdef object _ASCII_WORD, _SURROGATE, _SURROGATE_STAND_IN
cdef bint _COMPILED

ctypedef const unsigned char* _Cells

@cython.locals(lower=str)
cpdef str normalise(str text)
@cython.locals(prev=Py_UCS4, ch=Py_UCS4)
cdef bint _normal_ascii(str lower) except -1

cdef class Matcher:
    cdef readonly list _patterns  # read by tests/test_classify_accel.py
    cdef list _heads, _steps
    cdef object _automaton
    cdef public Py_ssize_t size
    cdef _Table _table

    @cython.locals(hits=list, found=list, start=Py_ssize_t, end=Py_ssize_t, at=Py_ssize_t,
                   table=_Table, delta="const unsigned short[::1]", classes=_Cells, final=_Cells, shift=Py_ssize_t,
                   outputs=list, state=Py_ssize_t, ch=Py_UCS4, out=tuple, k=Py_ssize_t)
    cpdef tuple scan(self, str text)
    @cython.locals(word_start=bint, plain=bint, entries=tuple, number=Py_ssize_t, second=str, more=tuple, at=Py_ssize_t,
                   place=Py_ssize_t)
    cdef _take(self, list found, str text, object index, Py_ssize_t start, Py_ssize_t end)  # index: kept boxed

cdef class _Table:
    cdef readonly const unsigned short[::1] delta
    cdef readonly bytes classes, final
    cdef readonly Py_ssize_t shift
    cdef readonly list outputs
    cdef readonly Py_ssize_t longest

    @cython.locals(delta="const unsigned short[::1]", classes=_Cells, final=_Cells, shift=Py_ssize_t, hits=list,
                   state=Py_ssize_t, at=Py_ssize_t, ch=Py_UCS4, out=tuple, k=Py_ssize_t)
    cpdef list matches(self, str text)
    @cython.locals(delta="const unsigned short[::1]", classes=_Cells, final=_Cells, shift=Py_ssize_t, outputs=list,
                   data=bytes, chars=_Cells, size=Py_ssize_t, middle=Py_ssize_t, first=Py_ssize_t,
                   second=Py_ssize_t, found=list, stamps=bytearray, marked="unsigned char*", one=size_t, two=size_t,
                   both=Py_ssize_t, step=Py_ssize_t)
    cpdef list seen(self, str text, Py_ssize_t start, Py_ssize_t stop)

@cython.locals(out=tuple, k=Py_ssize_t)
cdef void _report(size_t state, unsigned char* marked, list outputs, list found)

@cython.locals(found=Py_ssize_t, part=str)
cdef bint _pieces_follow(str text, tuple pieces, Py_ssize_t pos) except -1
