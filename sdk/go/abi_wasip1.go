//go:build wasip1

package aegis

import "unsafe"

// The "aegis" host functions (docs/abi.md). Every pointer/length pair is a
// region of this module's memory; the host copies what it needs during the
// call and never keeps the pointer.

//go:wasmimport aegis request_meta_len
func wasmRequestMetaLen() int32

//go:wasmimport aegis request_meta_read
func wasmRequestMetaRead(ptr unsafe.Pointer, n uint32) int32

//go:wasmimport aegis request_body_len
func wasmRequestBodyLen() int32

//go:wasmimport aegis request_body_read
func wasmRequestBodyRead(ptr unsafe.Pointer, n uint32) int32

//go:wasmimport aegis response_set
func wasmResponseSet(metaPtr unsafe.Pointer, metaLen uint32, bodyPtr unsafe.Pointer, bodyLen uint32) int32

//go:wasmimport aegis result_len
func wasmResultLen() int32

//go:wasmimport aegis result_read
func wasmResultRead(ptr unsafe.Pointer, n uint32) int32

//go:wasmimport aegis kv_get
func wasmKVGet(tablePtr unsafe.Pointer, tableLen uint32, keyPtr unsafe.Pointer, keyLen uint32) int32

//go:wasmimport aegis kv_put
func wasmKVPut(tablePtr unsafe.Pointer, tableLen uint32, keyPtr unsafe.Pointer, keyLen uint32, valPtr unsafe.Pointer, valLen uint32) int32

//go:wasmimport aegis kv_delete
func wasmKVDelete(tablePtr unsafe.Pointer, tableLen uint32, keyPtr unsafe.Pointer, keyLen uint32) int32

//go:wasmimport aegis kv_list
func wasmKVList(tablePtr unsafe.Pointer, tableLen uint32, prefixPtr unsafe.Pointer, prefixLen uint32) int32

//go:wasmimport aegis object_get
func wasmObjectGet(keyPtr unsafe.Pointer, keyLen uint32) int32

//go:wasmimport aegis object_put
func wasmObjectPut(keyPtr unsafe.Pointer, keyLen uint32, dataPtr unsafe.Pointer, dataLen uint32) int32

//go:wasmimport aegis object_delete
func wasmObjectDelete(keyPtr unsafe.Pointer, keyLen uint32) int32

//go:wasmimport aegis object_list
func wasmObjectList(prefixPtr unsafe.Pointer, prefixLen uint32) int32

//go:wasmimport aegis publish
func wasmPublish(topicPtr unsafe.Pointer, topicLen uint32, dataPtr unsafe.Pointer, dataLen uint32) int32

//go:wasmimport aegis fetch
func wasmFetch(reqPtr unsafe.Pointer, reqLen uint32) int32

//go:wasmimport aegis invoke
func wasmInvoke(reqPtr unsafe.Pointer, reqLen uint32) int32

//go:wasmimport aegis secret
func wasmSecret(namePtr unsafe.Pointer, nameLen uint32) int32

//go:wasmimport aegis log
func wasmLog(level int32, msgPtr unsafe.Pointer, msgLen uint32)

// aegisHandle is the entry point the platform calls once per invocation.
//
//go:wasmexport aegis_handle
func aegisHandle() int32 { return handle() }

func str(s string) (unsafe.Pointer, uint32) {
	return unsafe.Pointer(unsafe.StringData(s)), uint32(len(s))
}

func buf(b []byte) (unsafe.Pointer, uint32) {
	return unsafe.Pointer(unsafe.SliceData(b)), uint32(len(b))
}

func hostRequestMetaLen() int32 { return wasmRequestMetaLen() }

func hostRequestMetaRead(b []byte) int32 {
	p, n := buf(b)
	return wasmRequestMetaRead(p, n)
}

func hostRequestBodyLen() int32 { return wasmRequestBodyLen() }

func hostRequestBodyRead(b []byte) int32 {
	p, n := buf(b)
	return wasmRequestBodyRead(p, n)
}

func hostResponseSet(meta, body []byte) int32 {
	mp, mn := buf(meta)
	bp, bn := buf(body)
	return wasmResponseSet(mp, mn, bp, bn)
}

func hostResultLen() int32 { return wasmResultLen() }

func hostResultRead(b []byte) int32 {
	p, n := buf(b)
	return wasmResultRead(p, n)
}

func hostKVGet(table, key string) int32 {
	tp, tn := str(table)
	kp, kn := str(key)
	return wasmKVGet(tp, tn, kp, kn)
}

func hostKVPut(table, key string, value []byte) int32 {
	tp, tn := str(table)
	kp, kn := str(key)
	vp, vn := buf(value)
	return wasmKVPut(tp, tn, kp, kn, vp, vn)
}

func hostKVDelete(table, key string) int32 {
	tp, tn := str(table)
	kp, kn := str(key)
	return wasmKVDelete(tp, tn, kp, kn)
}

func hostKVList(table, prefix string) int32 {
	tp, tn := str(table)
	pp, pn := str(prefix)
	return wasmKVList(tp, tn, pp, pn)
}

func hostObjectGet(key string) int32 {
	kp, kn := str(key)
	return wasmObjectGet(kp, kn)
}

func hostObjectPut(key string, data []byte) int32 {
	kp, kn := str(key)
	dp, dn := buf(data)
	return wasmObjectPut(kp, kn, dp, dn)
}

func hostObjectDelete(key string) int32 {
	kp, kn := str(key)
	return wasmObjectDelete(kp, kn)
}

func hostObjectList(prefix string) int32 {
	pp, pn := str(prefix)
	return wasmObjectList(pp, pn)
}

func hostPublish(topic string, data []byte) int32 {
	tp, tn := str(topic)
	dp, dn := buf(data)
	return wasmPublish(tp, tn, dp, dn)
}

func hostFetch(req []byte) int32 {
	p, n := buf(req)
	return wasmFetch(p, n)
}

func hostInvoke(req []byte) int32 {
	p, n := buf(req)
	return wasmInvoke(p, n)
}

func hostSecret(name string) int32 {
	np, nn := str(name)
	return wasmSecret(np, nn)
}

func hostLog(level int32, msg string) {
	p, n := str(msg)
	wasmLog(level, p, n)
}
