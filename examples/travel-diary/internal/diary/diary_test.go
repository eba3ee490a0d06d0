package diary

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"strings"
	"testing"
)

func pngBytes(t *testing.T, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func jpegBytes(t *testing.T, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func solid(w, h int, c color.NRGBA) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetNRGBA(x, y, c)
		}
	}
	return img
}

func body(t *testing.T, fields map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNewIDAndValidID(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		id := NewID()
		if !ValidID(id) {
			t.Fatalf("NewID() = %q, not ValidID", id)
		}
		if seen[id] {
			t.Fatalf("NewID() repeated %q", id)
		}
		seen[id] = true
	}
	for _, bad := range []string{
		"",
		"0123456789abcdef0123456789abcde",   // 31
		"0123456789abcdef0123456789abcdef0", // 33
		"0123456789ABCDEF0123456789ABCDEF",  // uppercase
		"0123456789abcdef0123456789abcdeg",
		"../../../../../../../../../etc/pw",
		"0123456789abcdef/123456789abcdef",
	} {
		if ValidID(bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
}

func TestParseNewEntryValid(t *testing.T) {
	img := pngBytes(t, solid(10, 5, color.NRGBA{R: 200, A: 255}))
	e, err := ParseNewEntry(body(t, map[string]any{
		"title": "  Lisbon  ",
		"text":  "Trams and tiles.",
		"image": base64.StdEncoding.EncodeToString(img),
	}))
	if err != nil {
		t.Fatal(err)
	}
	if e.Title != "Lisbon" || e.Text != "Trams and tiles." || e.Format != PNG || !bytes.Equal(e.Image, img) {
		t.Fatalf("got %+v", e)
	}

	// text is optional; JPEG is accepted.
	e, err = ParseNewEntry(body(t, map[string]any{
		"title": "Porto",
		"image": base64.StdEncoding.EncodeToString(jpegBytes(t, solid(8, 8, color.NRGBA{G: 90, A: 255}))),
	}))
	if err != nil {
		t.Fatal(err)
	}
	if e.Format != JPEG || e.Text != "" {
		t.Fatalf("got %+v", e)
	}
}

func TestParseNewEntryInvalid(t *testing.T) {
	okImage := base64.StdEncoding.EncodeToString(pngBytes(t, solid(4, 4, color.NRGBA{A: 255})))
	secret := "s3cr3t-payload-marker"
	tests := []struct {
		name  string
		body  []byte
		field string
		want  string // substring of the message
	}{
		{"not json", []byte(secret + "{"), "", "JSON object"},
		{"array", []byte(`["` + secret + `"]`), "", "JSON object"},
		{"two objects", []byte(`{"title":"a","image":"` + okImage + `"} {}`), "", "exactly one"},
		{"unknown field", body(t, map[string]any{"title": "a", "image": okImage, secret: 1}), "", "unknown field"},
		{"missing title", body(t, map[string]any{"image": okImage}), "title", "required"},
		{"blank title", body(t, map[string]any{"title": "   ", "image": okImage}), "title", "empty"},
		{"title not string", body(t, map[string]any{"title": 7, "image": okImage}), "title", "string"},
		{"long title", body(t, map[string]any{"title": strings.Repeat("é", MaxTitleChars+1), "image": okImage}), "title", "at most 200"},
		{"long text", body(t, map[string]any{"title": "a", "text": strings.Repeat("x", MaxTextChars+1), "image": okImage}), "text", "at most 10000"},
		{"missing image", body(t, map[string]any{"title": "a"}), "image", "required"},
		{"image not base64", body(t, map[string]any{"title": "a", "image": secret + "!!"}), "image", "base64"},
		{"image not an image", body(t, map[string]any{"title": "a", "image": base64.StdEncoding.EncodeToString([]byte("GIF89a" + secret))}), "image", "PNG or JPEG"},
		{"truncated png", body(t, map[string]any{"title": "a", "image": base64.StdEncoding.EncodeToString(pngMagic)}), "image", "not a readable png"},
		{"image too big", body(t, map[string]any{"title": "a", "image": base64.StdEncoding.EncodeToString(append(append([]byte{}, pngMagic...), make([]byte, MaxImageBytes)...))}), "image", "at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseNewEntry(tt.body)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %v is not a *ValidationError", err)
			}
			if ve.Field != tt.field || !strings.Contains(ve.Msg, tt.want) {
				t.Errorf("got field %q msg %q; want field %q msg containing %q", ve.Field, ve.Msg, tt.field, tt.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("message %q echoes the payload", err)
			}
		})
	}
}

func TestCheckImageRefusesDecompressionBombs(t *testing.T) {
	// A 5000×5000 single-colour PNG is a few kilobytes on the wire but
	// would need about 100 MB once decoded.
	img := image.NewGray(image.Rect(0, 0, 5000, 5000))
	rgba := image.NewNRGBA(image.Rect(0, 0, 5000, 5000))
	for _, tc := range []struct {
		name string
		img  image.Image
		ok   bool
	}{
		{"gray 25MP", img, true}, // 1 byte per pixel: 25 MB
		{"nrgba 25MP", rgba, false},
	} {
		b := pngBytes(t, tc.img)
		if len(b) > MaxImageBytes {
			t.Fatalf("%s: test image is %d bytes", tc.name, len(b))
		}
		_, err := CheckImage(b)
		if (err == nil) != tc.ok {
			t.Errorf("%s: CheckImage error = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "5000×5000") {
			t.Errorf("%s: message %q does not give the size", tc.name, err)
		}
	}
}

func TestSniff(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want Format
	}{
		{pngMagic, PNG},
		{[]byte{0xff, 0xd8, 0xff, 0xe0}, JPEG},
		{[]byte{0xff, 0xd8}, Unknown},
		{[]byte("GIF89a"), Unknown},
		{[]byte("<svg"), Unknown},
		{nil, Unknown},
	} {
		if got := Sniff(tc.in); got != tc.want {
			t.Errorf("Sniff(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestFitSize(t *testing.T) {
	for _, tc := range []struct{ w, h, ww, wh int }{
		{64, 48, 64, 48},      // already fits: not enlarged
		{128, 128, 128, 128},  // exactly fits
		{256, 256, 128, 128},  // square
		{4032, 3024, 128, 96}, // landscape photo
		{3024, 4032, 96, 128}, // portrait photo
		{1000, 3, 128, 1},     // extreme strip keeps at least one pixel
		{3, 1000, 1, 128},
		{129, 1, 128, 1},
	} {
		w, h := FitSize(tc.w, tc.h, ThumbnailSize)
		if w != tc.ww || h != tc.wh {
			t.Errorf("FitSize(%d, %d) = %d×%d, want %d×%d", tc.w, tc.h, w, h, tc.ww, tc.wh)
		}
	}
}

func TestThumbnailAverages(t *testing.T) {
	// Left half red, right half blue, 512×256: the thumbnail is 128×64 and
	// keeps the split exactly, since each 4×4 block is one colour.
	src := image.NewNRGBA(image.Rect(0, 0, 512, 256))
	for y := 0; y < 256; y++ {
		for x := 0; x < 512; x++ {
			c := color.NRGBA{R: 255, A: 255}
			if x >= 256 {
				c = color.NRGBA{B: 255, A: 255}
			}
			src.SetNRGBA(x, y, c)
		}
	}
	th := Thumbnail(src)
	if got := th.Bounds(); got != image.Rect(0, 0, 128, 64) {
		t.Fatalf("bounds %v", got)
	}
	if c := th.RGBAAt(10, 10); c != (color.RGBA{R: 255, A: 255}) {
		t.Errorf("left pixel %v", c)
	}
	if c := th.RGBAAt(100, 50); c != (color.RGBA{B: 255, A: 255}) {
		t.Errorf("right pixel %v", c)
	}

	// A 2×2 checkerboard of black and white averages to mid grey.
	cb := image.NewGray(image.Rect(0, 0, 256, 256))
	for y := 0; y < 256; y++ {
		for x := 0; x < 256; x++ {
			if (x+y)%2 == 0 {
				cb.SetGray(x, y, color.Gray{Y: 255})
			}
		}
	}
	c := Thumbnail(cb).RGBAAt(64, 64)
	if c.R < 126 || c.R > 128 || c.R != c.G || c.G != c.B || c.A != 255 {
		t.Errorf("checkerboard average %v, want about 127 grey", c)
	}
}

func TestThumbnailTransparencyDoesNotBleed(t *testing.T) {
	// Half opaque green, half fully transparent "red": premultiplied
	// averaging must not tint the result red.
	src := image.NewNRGBA(image.Rect(0, 0, 256, 256))
	for y := 0; y < 256; y++ {
		for x := 0; x < 256; x++ {
			c := color.NRGBA{G: 255, A: 255}
			if x%2 == 1 {
				c = color.NRGBA{R: 255, A: 0}
			}
			src.SetNRGBA(x, y, c)
		}
	}
	c := Thumbnail(src).RGBAAt(5, 5)
	if c.R != 0 || c.A < 126 || c.A > 128 || c.G != c.A {
		t.Errorf("got %v, want half-transparent pure green", c)
	}
}

func TestThumbnailAllDecoderTypes(t *testing.T) {
	// The fast paths and the generic At path must agree.
	base := image.NewNRGBA(image.Rect(0, 0, 300, 200))
	for y := 0; y < 200; y++ {
		for x := 0; x < 300; x++ {
			base.SetNRGBA(x, y, color.NRGBA{R: uint8(x), G: uint8(y), B: 128, A: 255})
		}
	}
	want := Thumbnail(base)
	if want.Bounds() != image.Rect(0, 0, 128, 85) {
		t.Fatalf("bounds %v", want.Bounds())
	}
	rgba := image.NewRGBA(base.Bounds())
	rgba64 := image.NewRGBA64(base.Bounds())
	for y := 0; y < 200; y++ {
		for x := 0; x < 300; x++ {
			rgba.Set(x, y, base.At(x, y))
			rgba64.Set(x, y, base.At(x, y))
		}
	}
	// A sub-image whose bounds do not start at the origin.
	big := image.NewNRGBA(image.Rect(0, 0, 400, 300))
	for y := 0; y < 200; y++ {
		for x := 0; x < 300; x++ {
			big.SetNRGBA(x+50, y+70, base.NRGBAAt(x, y))
		}
	}
	sub := big.SubImage(image.Rect(50, 70, 350, 270))
	for name, img := range map[string]image.Image{"rgba": rgba, "rgba64": rgba64, "sub": sub} {
		got := Thumbnail(img)
		if !bytes.Equal(got.Pix, want.Pix) {
			t.Errorf("%s: thumbnail differs from the NRGBA one", name)
		}
	}

	// JPEG decodes to YCbCr: lossy, so compare loosely.
	j, err := Decode(jpegBytes(t, base))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := j.(*image.YCbCr); !ok {
		t.Fatalf("JPEG decoded to %T", j)
	}
	got := Thumbnail(j)
	for i := range got.Pix {
		if d := int(got.Pix[i]) - int(want.Pix[i]); d < -8 || d > 8 {
			t.Fatalf("YCbCr thumbnail byte %d = %d, want about %d", i, got.Pix[i], want.Pix[i])
		}
	}
}

func TestThumbnailRoundTripPNG(t *testing.T) {
	src := pngBytes(t, solid(640, 480, color.NRGBA{R: 10, G: 20, B: 30, A: 255}))
	img, err := Decode(src)
	if err != nil {
		t.Fatal(err)
	}
	out, err := EncodePNG(Thumbnail(img))
	if err != nil {
		t.Fatal(err)
	}
	if Sniff(out) != PNG {
		t.Fatal("thumbnail is not a PNG")
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(out))
	if err != nil || cfg.Width != 128 || cfg.Height != 96 {
		t.Fatalf("thumbnail config %+v, %v", cfg, err)
	}
}

func TestDecodeRefusesNonImages(t *testing.T) {
	if _, err := Decode([]byte("not an image")); err == nil {
		t.Fatal("Decode accepted garbage")
	}
}

func TestEvents(t *testing.T) {
	id := NewID()
	other := NewID()

	ok := [][]byte{
		body(t, map[string]any{"id": id, "image": "images/" + id + ".png"}),
		body(t, map[string]any{"id": id, "image": "images/" + id + ".jpg"}),
	}
	for _, b := range ok {
		if _, err := ParseImageSaved(b); err != nil {
			t.Errorf("ParseImageSaved(%s): %v", b, err)
		}
	}
	bad := [][]byte{
		[]byte("{"),
		body(t, map[string]any{"id": "x", "image": "images/x.png"}),
		body(t, map[string]any{"id": id, "image": "images/" + other + ".png"}),
		body(t, map[string]any{"id": id, "image": "thumbs/" + id + ".png"}),
		body(t, map[string]any{"id": id, "image": "images/" + id + ".gif"}),
	}
	for _, b := range bad {
		if _, err := ParseImageSaved(b); !errors.Is(err, ErrBadEvent) {
			t.Errorf("ParseImageSaved(%s) = %v, want ErrBadEvent", b, err)
		}
	}

	if ev, err := ParseThumbnailCreated(body(t, map[string]any{"id": id, "thumbnail": ThumbnailKey(id)})); err != nil || ev.ID != id {
		t.Errorf("ParseThumbnailCreated: %+v, %v", ev, err)
	}
	for _, b := range [][]byte{
		[]byte("null x"),
		body(t, map[string]any{"id": id, "thumbnail": ThumbnailKey(other)}),
		body(t, map[string]any{"id": id, "thumbnail": "images/" + id + ".png"}),
	} {
		if _, err := ParseThumbnailCreated(b); !errors.Is(err, ErrBadEvent) {
			t.Errorf("ParseThumbnailCreated(%s) = %v, want ErrBadEvent", b, err)
		}
	}
}

func TestSetThumbnail(t *testing.T) {
	id := NewID()
	doc, _ := json.Marshal(map[string]any{
		"id": id, "title": "t", "text": "", "image": "images/" + id + ".png",
		"created_at": "2026-01-02T03:04:05Z", "future_field": []int{1, 2},
	})
	out, err := SetThumbnail(doc, ThumbnailKey(id))
	if err != nil {
		t.Fatal(err)
	}
	var e Entry
	if err := json.Unmarshal(out, &e); err != nil {
		t.Fatal(err)
	}
	if e.Thumbnail != ThumbnailKey(id) || e.ID != id || e.CreatedAt != "2026-01-02T03:04:05Z" {
		t.Errorf("got %+v", e)
	}
	if !bytes.Contains(out, []byte(`"future_field":[1,2]`)) {
		t.Errorf("unknown field lost: %s", out)
	}
	// Applying it twice (a redelivered event) gives the same document.
	again, err := SetThumbnail(out, ThumbnailKey(id))
	if err != nil || !bytes.Equal(again, out) {
		t.Errorf("not idempotent: %s vs %s (%v)", again, out, err)
	}
	for _, bad := range []string{"", "null", "[]", "{"} {
		if _, err := SetThumbnail([]byte(bad), "k"); err == nil {
			t.Errorf("SetThumbnail(%q) succeeded", bad)
		}
	}
}

func TestCheckImageBudgetsProgressiveJPEG(t *testing.T) {
	// A solid 2000×2000 JPEG: 12 MB decoded when baseline, but a
	// progressive decode also holds 48 MB of coefficients.
	base := jpegBytes(t, solid(2000, 2000, color.NRGBA{R: 50, G: 100, B: 150, A: 255}))
	if !jpegBaseline(base) {
		t.Fatal("encoder output not seen as baseline")
	}
	if _, err := CheckImage(base); err != nil {
		t.Fatalf("baseline: %v", err)
	}
	// Rewrite the SOF0 marker as SOF2 (progressive). The header still
	// parses, which is all CheckImage reads.
	i := bytes.Index(base, []byte{0xff, 0xc0})
	prog := append([]byte{}, base...)
	prog[i+1] = 0xc2
	if jpegBaseline(prog) {
		t.Fatal("SOF2 seen as baseline")
	}
	if _, err := CheckImage(prog); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("progressive: %v, want too large", err)
	}
	// A 12-megapixel baseline photo passes.
	if _, err := CheckImage(jpegBytes(t, image.NewGray(image.Rect(0, 0, 4032, 3024)))); err != nil {
		t.Fatalf("12MP gray: %v", err)
	}
}

func TestJPEGBaselineWalk(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want bool
	}{
		{"sof0 directly", []byte{0xff, 0xd8, 0xff, 0xc0, 0, 2}, true},
		{"after app0 and fill bytes", []byte{0xff, 0xd8, 0xff, 0xe0, 0, 4, 'J', 'F', 0xff, 0xff, 0xff, 0xc1, 0, 2}, true},
		{"dht before sof", []byte{0xff, 0xd8, 0xff, 0xc4, 0, 2, 0xff, 0xc0, 0, 2}, true},
		{"progressive", []byte{0xff, 0xd8, 0xff, 0xc2, 0, 2}, false},
		{"lossless", []byte{0xff, 0xd8, 0xff, 0xc3, 0, 2}, false},
		{"garbage after soi", []byte{0xff, 0xd8, 0x00, 0xc0, 0, 2}, false},
		{"length runs off the end", []byte{0xff, 0xd8, 0xff, 0xe1, 0xff, 0xff, 0xff, 0xc0}, false},
		{"truncated", []byte{0xff, 0xd8, 0xff}, false},
	} {
		if got := jpegBaseline(tc.in); got != tc.want {
			t.Errorf("%s: jpegBaseline = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestSampleImage(t *testing.T) {
	// The README's tour posts sample.png; it must pass validation.
	b, err := os.ReadFile("../../sample.png")
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 5<<10 {
		t.Errorf("sample.png is %d bytes; keep it tiny", len(b))
	}
	e, err := ParseNewEntry(body(t, map[string]any{"title": "Sample", "image": base64.StdEncoding.EncodeToString(b)}))
	if err != nil {
		t.Fatal(err)
	}
	img, err := Decode(e.Image)
	if err != nil {
		t.Fatal(err)
	}
	// 64×48 already fits the 128×128 box, so it is kept at its size.
	if got := Thumbnail(img).Bounds(); got != image.Rect(0, 0, 64, 48) {
		t.Errorf("thumbnail bounds %v", got)
	}
}

func TestThumbnailYCbCrSubsampling(t *testing.T) {
	// The plane-reading path must agree with converting every pixel, for
	// every chroma subsampling and for bounds not at the origin.
	r := image.Rect(3, 5, 3+401, 5+263)
	for _, ratio := range []image.YCbCrSubsampleRatio{
		image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420,
		image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410,
	} {
		src := image.NewYCbCr(r, ratio)
		for i := range src.Y {
			src.Y[i] = uint8(40 + (i*7)%160)
		}
		for i := range src.Cb {
			src.Cb[i] = uint8(100 + (i*3)%56)
			src.Cr[i] = uint8(100 + (i*5)%56)
		}
		ref := image.NewNRGBA(r)
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				ref.Set(x, y, src.At(x, y))
			}
		}
		got, want := Thumbnail(src), Thumbnail(ref)
		if got.Bounds() != want.Bounds() || got.Bounds() != image.Rect(0, 0, 128, 84) {
			t.Fatalf("%v: bounds %v vs %v", ratio, got.Bounds(), want.Bounds())
		}
		for i := range got.Pix {
			if d := int(got.Pix[i]) - int(want.Pix[i]); d < -2 || d > 2 {
				t.Fatalf("%v: byte %d = %d, want %d", ratio, i, got.Pix[i], want.Pix[i])
			}
		}
	}
}

func TestNotificationFor(t *testing.T) {
	id := "0123456789abcdef0123456789abcdef"
	b, err := NotificationFor(ThumbnailCreated{ID: id, Thumbnail: ThumbnailKey(id)})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"event":"thumbnail.created","id":"` + id + `","thumbnail":"thumbs/` + id + `.png"}`
	if string(b) != want {
		t.Fatalf("notification = %s, want %s", b, want)
	}
}
