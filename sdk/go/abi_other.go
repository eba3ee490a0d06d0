//go:build !wasip1

package aegis

// Outside WebAssembly there is no platform to call: every call fails with
// CodeUnavailable, so code using the SDK still builds, vets and unit-tests
// on the host.

func hostRequestMetaLen() int32             { return CodeUnavailable }
func hostRequestMetaRead([]byte) int32      { return CodeUnavailable }
func hostRequestBodyLen() int32             { return CodeUnavailable }
func hostRequestBodyRead([]byte) int32      { return CodeUnavailable }
func hostResponseSet(_, _ []byte) int32     { return CodeUnavailable }
func hostResultLen() int32                  { return 0 }
func hostResultRead([]byte) int32           { return 0 }
func hostKVGet(_, _ string) int32           { return CodeUnavailable }
func hostKVPut(_, _ string, _ []byte) int32 { return CodeUnavailable }
func hostKVDelete(_, _ string) int32        { return CodeUnavailable }
func hostKVList(_, _ string) int32          { return CodeUnavailable }
func hostObjectGet(string) int32            { return CodeUnavailable }
func hostObjectPut(string, []byte) int32    { return CodeUnavailable }
func hostObjectDelete(string) int32         { return CodeUnavailable }
func hostObjectList(string) int32           { return CodeUnavailable }
func hostPublish(string, []byte) int32      { return CodeUnavailable }
func hostFetch([]byte) int32                { return CodeUnavailable }
func hostInvoke([]byte) int32               { return CodeUnavailable }
func hostSecret(string) int32               { return CodeUnavailable }
func hostLog(int32, string)                 {}
