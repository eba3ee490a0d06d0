package jetstream

import "testing"

// LastRevision moves with every write and delete, of any key, and only
// then.
func TestLastRevision(t *testing.T) {
	n := openEmbedded(t, "")
	ctx := testCtx(t)
	b, err := n.Bucket(ctx, uniq(t), BucketOptions{})
	noErr(t, err)
	rev, err := b.LastRevision(ctx)
	noErr(t, err)
	equal(t, uint64(0), rev)
	put, err := b.Put(ctx, "a", []byte("1"))
	noErr(t, err)
	rev, err = b.LastRevision(ctx)
	noErr(t, err)
	equal(t, put, rev)
	_, _, err = b.Get(ctx, "a")
	noErr(t, err)
	again, err := b.LastRevision(ctx)
	noErr(t, err)
	equal(t, rev, again)
	noErr(t, b.Delete(ctx, "a"))
	deleted, err := b.LastRevision(ctx)
	noErr(t, err)
	if deleted <= rev {
		t.Fatalf("a delete left the last revision at %d (was %d)", deleted, rev)
	}
}
