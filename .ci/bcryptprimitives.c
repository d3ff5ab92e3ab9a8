/*
 * A stand-in for Windows' bcryptprimitives.dll, for running accel.exe under
 * Wine in CI only. Rust's standard library (1.78 on) draws its random bytes
 * from ProcessPrng in that DLL, which every supported Windows has but Wine 8
 * (Debian 12) lacks, so the .exe would not even load. RtlGenRandom (advapi32)
 * gives the same kind of bytes. Built by .ci/run with MinGW; never shipped.
 */
#include <windows.h>
#include <ntsecapi.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        /* RtlGenRandom takes a ULONG length. */
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!RtlGenRandom(data, chunk)) {
            return FALSE;
        }
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
