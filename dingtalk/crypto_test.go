package dingtalk_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/dingq/dingq/dingtalk"
)

// DingTalk's official callback sample (dingtalk-api.md, "Callbacks").
const (
	sampleToken     = "123456"
	sampleAESKey    = "4g5j64qlyl3zvetqxz5jiocdr586fn2zvjpa8zls3ij"
	sampleTimestamp = "1445827045067"
	sampleNonce     = "nEXhMP4r"
	sampleSignature = "5a65ceeef9aab2d149439f82dc191dd6c5cbe2c0"
	sampleEncrypt   = "1a3NBxmCFwkCJvfoQ7WhJHB+iX3qHPsc9JbaDznE1i03peOk1LaOQoRz3+nlyGNhwmwJ3vDMG+OzrHMeiZI7gTRWVdUBmfxjZ8Ej23JVYa9VrYeJ5as7XM/ZpulX8NEQis44w53h1qAgnC3PRzM7Zc/D6Ibr0rgUathB6zRHP8PYrfgnNOS9PhSBdHlegK+AGGanfwjXuQ9+0pZcy0w9lQ=="
	// sampleOwner is the owner key the sample carries (an ISV suiteKey).
	sampleOwner = "suite4xxxxxxxxxxxxxxx"
)

func newCrypto(t testing.TB, owner string) *dingtalk.CallbackCrypto {
	t.Helper()
	c, err := dingtalk.NewCallbackCrypto(sampleToken, sampleAESKey, owner)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sampleKey derives the AES key independently of the package.
func sampleKey(t testing.TB) []byte {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(sampleAESKey + "=")
	if err != nil || len(key) != 32 {
		t.Fatalf("key: %v, %d bytes", err, len(key))
	}
	return key
}

// rawCBC encrypts (enc) or decrypts a whole number of blocks with
// AES-256-CBC under IV = key[:16], with no padding of its own.
func rawCBC(t testing.TB, key, in []byte, enc bool) []byte {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, len(in))
	if enc {
		cipher.NewCBCEncrypter(block, key[:16]).CryptBlocks(out, in)
	} else {
		cipher.NewCBCDecrypter(block, key[:16]).CryptBlocks(out, in)
	}
	return out
}

// sealRaw encrypts an already padded plaintext and returns it in base64.
func sealRaw(t testing.TB, key, plain []byte) string {
	t.Helper()
	return base64.StdEncoding.EncodeToString(rawCBC(t, key, plain, true))
}

// header returns a fixed "random" prefix followed by the length field n.
func header(n uint32) []byte {
	h := []byte("0123456789abcdef\x00\x00\x00\x00")
	binary.BigEndian.PutUint32(h[16:], n)
	return h
}

// --- DingTalk's Java library (DingTalkEncryptor + PKCS7Padding), redone ---

const javaBlockSize = 32

// javaPaddingBytes is PKCS7Padding.getPaddingBytes: pad to 32.
func javaPaddingBytes(count int) []byte {
	amountToPad := javaBlockSize - (count % javaBlockSize)
	if amountToPad == 0 {
		amountToPad = javaBlockSize
	}
	return bytes.Repeat([]byte{byte(amountToPad & 0xFF)}, amountToPad)
}

// javaRemovePaddingBytes is PKCS7Padding.removePaddingBytes.
func javaRemovePaddingBytes(decrypted []byte) []byte {
	pad := int(decrypted[len(decrypted)-1])
	if pad < 1 || pad > javaBlockSize {
		pad = 0
	}
	return decrypted[:len(decrypted)-pad]
}

// javaEncrypt is DingTalkEncryptor.encrypt(random, plaintext).
func javaEncrypt(t testing.TB, key []byte, random string, plaintext []byte, corpID string) string {
	t.Helper()
	var buf bytes.Buffer
	buf.WriteString(random)
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(plaintext)))
	buf.Write(n[:])
	buf.Write(plaintext)
	buf.WriteString(corpID)
	buf.Write(javaPaddingBytes(buf.Len()))
	return sealRaw(t, key, buf.Bytes()) // AES/CBC/NoPadding
}

// javaDecrypt is DingTalkEncryptor.decrypt(text), with its corpId check.
func javaDecrypt(t testing.TB, key []byte, text, corpID string) ([]byte, error) {
	t.Helper()
	enc, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return nil, err
	}
	originalArr := rawCBC(t, key, enc, false)
	b := javaRemovePaddingBytes(originalArr)
	n := int(binary.BigEndian.Uint32(b[16:20]))
	plainText := b[20 : 20+n]
	fromCorpID := string(b[20+n:])
	if fromCorpID != corpID {
		return nil, errors.New("java: corpId mismatch")
	}
	return plainText, nil
}

// goSampleEncrypt encrypts as DingTalk's Go sample does: PKCS#7 to 16.
func goSampleEncrypt(t testing.TB, key []byte, random string, msg []byte, owner string) string {
	t.Helper()
	plain := append([]byte(random), make([]byte, 4)...)
	binary.BigEndian.PutUint32(plain[16:], uint32(len(msg)))
	plain = append(plain, msg...)
	plain = append(plain, owner...)
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	plain = append(plain, bytes.Repeat([]byte{byte(pad)}, pad)...)
	return sealRaw(t, key, plain)
}

func TestCallbackCryptoOfficialSample(t *testing.T) {
	c := newCrypto(t, "")
	if got := c.Signature(sampleTimestamp, sampleNonce, sampleEncrypt); got != sampleSignature {
		t.Fatalf("Signature = %s, want %s", got, sampleSignature)
	}
	if !c.Verify(sampleSignature, sampleTimestamp, sampleNonce, sampleEncrypt) {
		t.Fatal("Verify(sample) = false")
	}
	msg, owner, err := c.DecryptOwner(sampleEncrypt)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("owner key of the official sample: %q", owner)
	var ev struct{ EventType string }
	if err := json.Unmarshal(msg, &ev); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if ev.EventType != "check_create_suite_url" {
		t.Fatalf("EventType = %q", ev.EventType)
	}
	if owner != sampleOwner {
		t.Fatalf("owner = %q, want %q", owner, sampleOwner)
	}

	// With the owner key set, Decrypt and Open accept it too.
	co := newCrypto(t, owner)
	if got, err := co.Open(sampleSignature, sampleTimestamp, sampleNonce, sampleEncrypt); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("Open = %q, %v", got, err)
	}

	// The sample is padded with 22 bytes of 22: 32-byte blocks.
	raw, _ := base64.StdEncoding.DecodeString(sampleEncrypt)
	plain := rawCBC(t, sampleKey(t), raw, false)
	pad := int(plain[len(plain)-1])
	if pad != 22 {
		t.Fatalf("sample padding = %d, want 22", pad)
	}
	// More than 16 bytes of padding cannot come from 16-byte PKCS#7.
	if unpadded := len(plain) - pad; pad <= 16 || len(plain)%32 != 0 || !bytes.Equal(plain[unpadded:], bytes.Repeat([]byte{22}, 22)) {
		t.Fatalf("padding %d after %d bytes is not PKCS#7 to 32", pad, unpadded)
	}
	if want := 20 + len(msg) + len(owner); len(plain)-pad != want {
		t.Fatalf("unpadded %d bytes, want %d", len(plain)-pad, want)
	}
}

func TestCallbackCryptoJavaInterop(t *testing.T) {
	key := sampleKey(t)
	const owner = "ding1234567890abcdef"
	c := newCrypto(t, owner)
	for _, n := range []int{0, 1, 11, 12, 13, 43, 44, 100} {
		msg := bytes.Repeat([]byte("x"), n)

		// Ours → Java's.
		enc, err := c.Encrypt(msg)
		if err != nil {
			t.Fatal(err)
		}
		got, err := javaDecrypt(t, key, enc, owner)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("n=%d: java decrypt of ours = %q, %v", n, got, err)
		}

		// Java's → ours.
		jenc := javaEncrypt(t, key, "abcdefghijklmnop", msg, owner)
		got, err = c.Decrypt(jenc)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("n=%d: our decrypt of java's = %q, %v", n, got, err)
		}

		// Go sample's (16-byte padding) → ours.
		genc := goSampleEncrypt(t, key, "ponmlkjihgfedcba", msg, owner)
		got, err = c.Decrypt(genc)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("n=%d: our decrypt of the Go sample's = %q, %v", n, got, err)
		}
	}
	// The sample, by Java's decrypt.
	got, err := javaDecrypt(t, key, sampleEncrypt, sampleOwner)
	if err != nil || !bytes.Contains(got, []byte("check_create_suite_url")) {
		t.Fatalf("java decrypt of sample = %q, %v", got, err)
	}
}

func TestCallbackCryptoRoundTrip(t *testing.T) {
	key := sampleKey(t)
	for _, owner := range []string{"", "dingcorp123", sampleOwner} {
		c := newCrypto(t, owner)
		for _, n := range []int{0, 1, 15, 16, 31, 32, 33, 1000, 100 << 10} {
			msg := make([]byte, n)
			for i := range msg {
				msg[i] = byte(i * 7)
			}
			enc, err := c.Encrypt(msg)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := base64.StdEncoding.DecodeString(enc)
			if err != nil {
				t.Fatal(err)
			}
			if len(raw)%32 != 0 {
				t.Fatalf("owner %q n=%d: ciphertext %d bytes, not 32-byte blocks", owner, n, len(raw))
			}
			plain := rawCBC(t, key, raw, false)
			if pad := int(plain[len(plain)-1]); pad < 1 || pad > 32 || len(plain)-pad != 20+n+len(owner) {
				t.Fatalf("owner %q n=%d: pad %d", owner, n, pad)
			}
			got, err := c.Decrypt(enc)
			if err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("owner %q n=%d: Decrypt = %d bytes, %v", owner, n, len(got), err)
			}
			got, gotOwner, err := c.DecryptOwner(enc)
			if err != nil || !bytes.Equal(got, msg) || gotOwner != owner {
				t.Fatalf("owner %q n=%d: DecryptOwner = %d bytes, %q, %v", owner, n, len(got), gotOwner, err)
			}
			// Two encryptions differ (random prefix).
			if enc2, _ := c.Encrypt(msg); enc2 == enc {
				t.Fatalf("owner %q n=%d: Encrypt is deterministic", owner, n)
			}
		}
	}
}

func TestCallbackCryptoSealOpenSuccess(t *testing.T) {
	c := newCrypto(t, "dingcorp123")
	event := []byte(`{"EventType":"check_url"}`)
	enc, sig, err := c.Seal(event, "1700000000000", "abcdefgh")
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Open(sig, "1700000000000", "abcdefgh", enc)
	if err != nil || !bytes.Equal(got, event) {
		t.Fatalf("Open = %q, %v", got, err)
	}

	resp, err := c.Success("1700000000001", "nonce123")
	if err != nil {
		t.Fatal(err)
	}
	if resp.TimeStamp != "1700000000001" || resp.Nonce != "nonce123" {
		t.Fatalf("resp = %+v", resp)
	}
	got, err = c.Open(resp.MsgSignature, resp.TimeStamp, resp.Nonce, resp.Encrypt)
	if err != nil || string(got) != "success" {
		t.Fatalf("Open(Success) = %q, %v", got, err)
	}
	js, err := json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(js, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"msg_signature", "timeStamp", "nonce", "encrypt"} {
		if m[k] == "" {
			t.Errorf("answer %s lacks %q", js, k)
		}
	}
	if len(m) != 4 {
		t.Errorf("answer %s has %d fields, want 4", js, len(m))
	}
}

func TestCallbackCryptoVerify(t *testing.T) {
	c := newCrypto(t, "")
	for _, tc := range []struct {
		name, sig, ts, nonce, enc string
		want                      bool
	}{
		{"sample", sampleSignature, sampleTimestamp, sampleNonce, sampleEncrypt, true},
		{"upper-case hex", strings.ToUpper(sampleSignature), sampleTimestamp, sampleNonce, sampleEncrypt, true},
		{"too short", sampleSignature[:39], sampleTimestamp, sampleNonce, sampleEncrypt, false},
		{"too long", sampleSignature + "0", sampleTimestamp, sampleNonce, sampleEncrypt, false},
		{"empty", "", sampleTimestamp, sampleNonce, sampleEncrypt, false},
		{"one digit off", "6" + sampleSignature[1:], sampleTimestamp, sampleNonce, sampleEncrypt, false},
		{"other timestamp", sampleSignature, "1445827045068", sampleNonce, sampleEncrypt, false},
		{"other nonce", sampleSignature, sampleTimestamp, "nEXhMP4R", sampleEncrypt, false},
		{"other encrypt", sampleSignature, sampleTimestamp, sampleNonce, "A" + sampleEncrypt[1:], false},
	} {
		if got := c.Verify(tc.sig, tc.ts, tc.nonce, tc.enc); got != tc.want {
			t.Errorf("%s: Verify = %v, want %v", tc.name, got, tc.want)
		}
	}
	other, err := dingtalk.NewCallbackCrypto("654321", sampleAESKey, "")
	if err != nil {
		t.Fatal(err)
	}
	if other.Verify(sampleSignature, sampleTimestamp, sampleNonce, sampleEncrypt) {
		t.Error("Verify with another token = true")
	}
}

// tamperedSamples returns the sample's ciphertext with changes that each
// trip one check, and the error each must give.
func tamperedSamples(t testing.TB) []struct {
	name, enc string
	want      error
} {
	t.Helper()
	key := sampleKey(t)
	raw, _ := base64.StdEncoding.DecodeString(sampleEncrypt)
	plain := rawCBC(t, key, raw, false)
	pad := int(plain[len(plain)-1])
	flip := func(i int, x byte) string {
		b := bytes.Clone(raw)
		b[i] ^= x
		return base64.StdEncoding.EncodeToString(b)
	}
	b64 := base64.StdEncoding.EncodeToString
	msg := []byte(`{"EventType":"check_url"}`)
	withPad := func(body []byte, pad int, padByte byte) string {
		return sealRaw(t, key, append(bytes.Clone(body), bytes.Repeat([]byte{padByte}, pad)...))
	}
	good := append(append(header(uint32(len(msg))), msg...), sampleOwner...) // 66 bytes
	return []struct {
		name, enc string
		want      error
	}{
		// CBC: flipping ciphertext byte i flips plaintext byte i+16.
		{"flipped byte in the length field", flip(0, 0x80), dingtalk.ErrCallbackLength},
		{"flipped byte in the padding", flip(len(raw)-17, 0x01), dingtalk.ErrCallbackPadding},
		{"flipped byte in the owner key", flip(len(raw)-pad-1-16, 0x01), dingtalk.ErrCallbackOwner},
		{"truncated base64", sampleEncrypt[:len(sampleEncrypt)-4], dingtalk.ErrCallbackCiphertext},
		{"truncated by a block", b64(raw[:len(raw)-16]), dingtalk.ErrCallbackPadding},
		{"empty", "", dingtalk.ErrCallbackCiphertext},
		{"not base64", "not base64!", dingtalk.ErrCallbackCiphertext},
		{"URL base64", strings.NewReplacer("+", "-", "/", "_").Replace(sampleEncrypt), dingtalk.ErrCallbackCiphertext},
		{"17 bytes", b64(raw[:17]), dingtalk.ErrCallbackCiphertext},
		{"15 bytes", b64(raw[:15]), dingtalk.ErrCallbackCiphertext},
		{"padding 0", sealRaw(t, key, append(bytes.Clone(good[:63]), 0)), dingtalk.ErrCallbackPadding},
		{"padding 33", withPad(good[:31], 33, 33), dingtalk.ErrCallbackPadding},
		{"padding bytes unequal", sealRaw(t, key, append(bytes.Clone(good), 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 29, 30)), dingtalk.ErrCallbackPadding},
		{"padding longer than the text", withPad(nil, 16, 32), dingtalk.ErrCallbackPadding},
		{"no room for the header", withPad(nil, 32, 32), dingtalk.ErrCallbackLength},
		{"header cut short", withPad(header(0)[:19], 13, 13), dingtalk.ErrCallbackLength},
		{"huge length field", withPad(append(header(0xFFFFFFFF), msg...), 32-(20+len(msg))%32, byte(32-(20+len(msg))%32)), dingtalk.ErrCallbackLength},
		{"length field one too long", withPad(append(header(uint32(len(msg)+len(sampleOwner)+1)), append(msg, sampleOwner...)...), 30, 30), dingtalk.ErrCallbackLength},
		{"wrong owner key", javaEncrypt(t, key, "abcdefghijklmnop", msg, "suite4yyyyyyyyyyyyyyy"), dingtalk.ErrCallbackOwner},
		{"no owner key", javaEncrypt(t, key, "abcdefghijklmnop", msg, ""), dingtalk.ErrCallbackOwner},
		{"owner key with a suffix", javaEncrypt(t, key, "abcdefghijklmnop", msg, sampleOwner+"x"), dingtalk.ErrCallbackOwner},
		{"good (control)", withPad(good, 30, 30), nil},
		{"sample (control)", sampleEncrypt, nil},
	}
}

func TestCallbackCryptoTampered(t *testing.T) {
	c := newCrypto(t, sampleOwner)
	key := sampleKey(t)
	for _, tc := range tamperedSamples(t) {
		t.Run(tc.name, func(t *testing.T) {
			msg, err := c.Decrypt(tc.enc)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Decrypt = %q, %v; want %v", msg, err, tc.want)
			}
			if err != nil {
				if msg != nil {
					t.Errorf("Decrypt returned %q with an error", msg)
				}
				s := err.Error()
				for _, secret := range []string{sampleAESKey, string(key), sampleOwner, `"EventType"`} {
					if strings.Contains(s, secret) {
						t.Errorf("error %q holds a secret or plaintext", s)
					}
				}
				if tc.enc != "" && strings.Contains(s, tc.enc) {
					t.Errorf("error %q holds the ciphertext", s)
				}
			}
			// Signed properly, Open gives the same answer; signed wrongly,
			// Open refuses it before decrypting.
			sig := c.Signature(sampleTimestamp, sampleNonce, tc.enc)
			if _, err2 := c.Open(sig, sampleTimestamp, sampleNonce, tc.enc); !errors.Is(err2, tc.want) || (err == nil) != (err2 == nil) {
				t.Errorf("Open = %v, want %v", err2, tc.want)
			}
			if _, err2 := c.Open(sampleSignature, "1", sampleNonce, tc.enc); !errors.Is(err2, dingtalk.ErrCallbackSignature) {
				t.Errorf("Open with a wrong signature = %v", err2)
			}
		})
	}
}

func TestCallbackCryptoOpenBadSignature(t *testing.T) {
	c := newCrypto(t, sampleOwner)
	for name, args := range map[string][4]string{
		"wrong signature": {strings.Repeat("0", 40), sampleTimestamp, sampleNonce, sampleEncrypt},
		"wrong timestamp": {sampleSignature, "1445827045066", sampleNonce, sampleEncrypt},
		"wrong nonce":     {sampleSignature, sampleTimestamp, "nEXhMP4s", sampleEncrypt},
		"no signature":    {"", sampleTimestamp, sampleNonce, sampleEncrypt},
		"not hex":         {strings.Repeat("z", 40), sampleTimestamp, sampleNonce, sampleEncrypt},
		"garbage encrypt": {sampleSignature, sampleTimestamp, sampleNonce, "!!"},
	} {
		msg, err := c.Open(args[0], args[1], args[2], args[3])
		if !errors.Is(err, dingtalk.ErrCallbackSignature) || msg != nil {
			t.Errorf("%s: Open = %q, %v", name, msg, err)
		}
	}
}

func TestNewCallbackCryptoValidation(t *testing.T) {
	for _, tc := range []struct {
		name, token, key, owner, field string
	}{
		{"short token", "12345", sampleAESKey, "", "token"},
		{"empty token", "", sampleAESKey, "", "token"},
		{"long token", strings.Repeat("t", 65), sampleAESKey, "", "token"},
		{"invalid UTF-8 token", "123456\xff", sampleAESKey, "", "token"},
		{"42-char key", sampleToken, sampleAESKey[:42], "", "aes_key"},
		{"44-char key", sampleToken, sampleAESKey + "a", "", "aes_key"},
		{"empty key", sampleToken, "", "", "aes_key"},
		{"key with +", sampleToken, sampleAESKey[:42] + "+", "", "aes_key"},
		{"key with /", sampleToken, "/" + sampleAESKey[1:], "", "aes_key"},
		{"key with =", sampleToken, sampleAESKey[:42] + "=", "", "aes_key"},
		{"key with non-ASCII", sampleToken, sampleAESKey[:41] + "é", "", "aes_key"},
		{"owner with space", sampleToken, sampleAESKey, "ding123 ", "owner_key"},
		{"owner invalid UTF-8", sampleToken, sampleAESKey, "ding\xff", "owner_key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := dingtalk.NewCallbackCrypto(tc.token, tc.key, tc.owner)
			var ve *dingtalk.ValidationError
			if !errors.As(err, &ve) || c != nil {
				t.Fatalf("NewCallbackCrypto = %v, %v; want a *ValidationError", c, err)
			}
			if ve.Field != tc.field {
				t.Errorf("Field = %q, want %q", ve.Field, tc.field)
			}
			s := err.Error()
			for _, secret := range []string{tc.token, tc.key, tc.owner} {
				if len(secret) >= 4 && strings.Contains(s, secret) {
					t.Errorf("error %q holds a secret", s)
				}
			}
		})
	}
	for _, token := range []string{"123456", strings.Repeat("t", 64), "令牌令牌令牌"} {
		if _, err := dingtalk.NewCallbackCrypto(token, sampleAESKey, ""); err != nil {
			t.Errorf("token of %d bytes: %v", len(token), err)
		}
	}
	for _, key := range []string{strings.Repeat("a", 43), strings.Repeat("Z", 43), strings.Repeat("9", 43)} {
		if _, err := dingtalk.NewCallbackCrypto(sampleToken, key, "ding123"); err != nil {
			t.Errorf("key %q: %v", key, err)
		}
	}
}

// FuzzCallbackDecrypt checks that Decrypt never panics and that whatever it
// accepts re-encrypts and decrypts to the same message. Each input is tried
// as encrypt itself, as a ciphertext (base64-encoded) and, cut to whole
// blocks, as a plaintext encrypted with the key: the last reaches the
// padding, length and owner checks.
func FuzzCallbackDecrypt(f *testing.F) {
	f.Add(sampleEncrypt)
	for _, tc := range tamperedSamples(f) {
		f.Add(tc.enc)
	}
	raw, _ := base64.StdEncoding.DecodeString(sampleEncrypt)
	f.Add(string(rawCBC(f, sampleKey(f), raw, false)))
	f.Add(string(raw))
	f.Add("")
	f.Add(strings.Repeat("\x20", 32))

	key := sampleKey(f)
	crypts := []*dingtalk.CallbackCrypto{newCrypto(f, sampleOwner), newCrypto(f, "")}
	f.Fuzz(func(t *testing.T, s string) {
		inputs := []string{s, base64.StdEncoding.EncodeToString([]byte(s))}
		if n := len(s) / 16 * 16; n > 0 {
			inputs = append(inputs, sealRaw(t, key, []byte(s[:n])))
		}
		for _, c := range crypts {
			for _, enc := range inputs {
				msg, err := c.Decrypt(enc)
				_, _, errOwner := c.DecryptOwner(enc)
				if err == nil && errOwner != nil {
					t.Fatalf("Decrypt accepted what DecryptOwner refused: %v", errOwner)
				}
				if err != nil {
					known := false
					for _, e := range []error{dingtalk.ErrCallbackCiphertext, dingtalk.ErrCallbackPadding, dingtalk.ErrCallbackLength, dingtalk.ErrCallbackOwner} {
						known = known || errors.Is(err, e)
					}
					if !known {
						t.Fatalf("unknown error %v", err)
					}
					continue
				}
				enc2, err := c.Encrypt(msg)
				if err != nil {
					t.Fatal(err)
				}
				msg2, err := c.Decrypt(enc2)
				if err != nil || !bytes.Equal(msg, msg2) {
					t.Fatalf("re-encrypted %q decrypts to %q, %v", msg, msg2, err)
				}
			}
		}
	})
}
