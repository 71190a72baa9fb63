package dingtalk

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"unicode/utf8"
)

// Errors of a callback message that cannot be trusted or read. They are
// sentinels, to be matched with [errors.Is]; an error that wraps one never
// holds key material, the plaintext or the ciphertext.
var (
	// ErrCallbackSignature: the signature does not match the token,
	// timestamp, nonce and encrypt: the message is not from DingTalk (or not
	// for this registration) and must be refused unread.
	ErrCallbackSignature = errors.New("dingtalk: callback: bad signature")
	// ErrCallbackCiphertext: encrypt is not standard base64, or does not
	// decode to a non-empty whole number of 16-byte AES blocks.
	ErrCallbackCiphertext = errors.New("dingtalk: callback: bad ciphertext")
	// ErrCallbackPadding: the decrypted text does not end in a PKCS#7
	// padding of 1 to 32 equal bytes (usually a wrong aes_key).
	ErrCallbackPadding = errors.New("dingtalk: callback: bad padding")
	// ErrCallbackLength: the decrypted text is too short for its header, or
	// its length field points past its end (or a message to encrypt is longer
	// than the 4-byte length field can say).
	ErrCallbackLength = errors.New("dingtalk: callback: bad length")
	// ErrCallbackOwner: the message was encrypted for another owner (corpId,
	// AppKey or suiteKey) than this registration's.
	ErrCallbackOwner = errors.New("dingtalk: callback: wrong owner key")
)

// Sizes of DingTalk's callback encryption.
const (
	// callbackRandomLen is the random prefix of every plaintext.
	callbackRandomLen = 16
	// callbackHeaderLen is the random prefix plus the 4-byte length field.
	callbackHeaderLen = callbackRandomLen + 4
	// callbackPadBlock is the PKCS#7 block size DingTalk's Java library pads
	// to (its Go sample pads to aes.BlockSize, 16): Encrypt pads to it and
	// Decrypt accepts any padding of 1 to it.
	callbackPadBlock = 32
	// callbackKeyLen is the AES-256 key decoded from the 43-character aes_key.
	callbackKeyLen = 32
)

// CallbackCrypto encrypts, decrypts and signs DingTalk's callback messages
// (事件回调) for one registration: the token and aes_key given to
// register_call_back (or the developer console), and the owner key DingTalk
// writes into every message: the corpId for registrations made through the
// API, the app's AppKey for those made in the console, the suiteKey for ISV
// apps.
//
// DingTalk's scheme: key = base64(aes_key + "="), 32 bytes, for AES-256-CBC
// with IV = key[:16]. The plaintext is 16 random bytes, the message's length
// as a 4-byte big-endian integer, the message and the owner key, PKCS#7-padded
// to 32-byte blocks; encrypt is the ciphertext in standard base64. Each
// message is signed with hex(sha1(the sorted concatenation of token,
// timestamp, nonce and encrypt)).
//
// A CallbackCrypto is made by [NewCallbackCrypto], is immutable and safe for
// concurrent use. Its zero value is not usable.
type CallbackCrypto struct {
	token    string
	key      []byte // 32 bytes; IV is key[:16]
	ownerKey string
	block    cipher.Block
}

// NewCallbackCrypto returns the CallbackCrypto of a registration. token must
// have 6–64 characters and aesKey exactly 43 characters of [a-zA-Z0-9], as
// DingTalk requires at registration; the AES key is
// base64.StdEncoding.DecodeString(aesKey+"="), 32 bytes. ownerKey is the
// corpId, AppKey or suiteKey messages must carry; when empty, Decrypt and
// Open do not check it (and Encrypt appends nothing).
//
// An error is a *ValidationError whose Field is "token", "aes_key" or
// "owner_key"; it never holds the token's, the key's or the owner key's value.
func NewCallbackCrypto(token, aesKey, ownerKey string) (*CallbackCrypto, error) {
	if !utf8.ValidString(token) {
		return nil, invalid("token", "not valid UTF-8")
	}
	if n := utf8.RuneCountInString(token); n < MinCallbackTokenLen || n > MaxCallbackTokenLen {
		return nil, invalid("token", "%d characters, want %d to %d", n, MinCallbackTokenLen, MaxCallbackTokenLen)
	}
	if len(aesKey) != CallbackAESKeyLen {
		return nil, invalid("aes_key", "%d bytes, want exactly %d characters of [a-zA-Z0-9]", len(aesKey), CallbackAESKeyLen)
	}
	for i := 0; i < len(aesKey); i++ {
		if b := aesKey[i]; !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9') {
			return nil, invalid("aes_key", "character %d is not one of [a-zA-Z0-9]", i)
		}
	}
	key, err := base64.StdEncoding.DecodeString(aesKey + "=")
	if err != nil || len(key) != callbackKeyLen {
		// Unreachable for 43 alphanumeric characters; never say why in
		// detail, as the decoder's error would quote an offset into the key.
		return nil, invalid("aes_key", "does not decode to a %d-byte key", callbackKeyLen)
	}
	if !utf8.ValidString(ownerKey) {
		return nil, invalid("owner_key", "not valid UTF-8")
	}
	if strings.TrimSpace(ownerKey) != ownerKey {
		return nil, invalid("owner_key", "has leading or trailing white space")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, invalid("aes_key", "not an AES key")
	}
	return &CallbackCrypto{token: token, key: key, ownerKey: ownerKey, block: block}, nil
}

// Signature returns DingTalk's signature of a callback message:
// hex(sha1(strings.Join(sorted([token, timestamp, nonce, encrypt]), ""))),
// in lower case. DingTalk sends it as signature (or msg_signature) in the
// query, and expects it as msg_signature in the answer.
func (c *CallbackCrypto) Signature(timestamp, nonce, encrypt string) string {
	parts := []string{c.token, timestamp, nonce, encrypt}
	sort.Strings(parts)
	sum := sha1.Sum([]byte(strings.Join(parts, "")))
	return hex.EncodeToString(sum[:])
}

// Verify reports whether signature is the signature of timestamp, nonce and
// encrypt. Hex digits may be in either case. It compares in constant time
// (crypto/subtle), and is false for a signature of the wrong length.
func (c *CallbackCrypto) Verify(signature, timestamp, nonce, encrypt string) bool {
	want := c.Signature(timestamp, nonce, encrypt)
	got := strings.ToLower(signature)
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// Encrypt encrypts msg as DingTalk does: the plaintext is 16 random bytes
// (crypto/rand), len(msg) as a 4-byte big-endian integer, msg and the owner
// key, PKCS#7-padded to a multiple of 32 bytes (1 to 32 bytes of padding),
// encrypted with AES-256-CBC under IV = key[:16], in standard base64.
//
// It fails only if crypto/rand does, or with ErrCallbackLength for a msg
// longer than the length field can say (4 GiB).
func (c *CallbackCrypto) Encrypt(msg []byte) (string, error) {
	if uint64(len(msg)) > math.MaxUint32 {
		return "", fmt.Errorf("%w: message of %d bytes is too long", ErrCallbackLength, len(msg))
	}
	n := callbackHeaderLen + len(msg) + len(c.ownerKey)
	pad := callbackPadBlock - n%callbackPadBlock // 1..32
	plain := make([]byte, n+pad)
	if _, err := rand.Read(plain[:callbackRandomLen]); err != nil {
		return "", fmt.Errorf("dingtalk: callback: random prefix: %w", err)
	}
	binary.BigEndian.PutUint32(plain[callbackRandomLen:callbackHeaderLen], uint32(len(msg)))
	copy(plain[callbackHeaderLen:], msg)
	copy(plain[callbackHeaderLen+len(msg):], c.ownerKey)
	for i := n; i < len(plain); i++ {
		plain[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(c.block, c.key[:aes.BlockSize]).CryptBlocks(plain, plain)
	return base64.StdEncoding.EncodeToString(plain), nil
}

// Decrypt decrypts encrypt (a callback's "encrypt" field) and returns the
// message, checking that encrypt is valid standard base64 of a non-empty
// whole number of 16-byte blocks (else ErrCallbackCiphertext), that the
// padding is 1 to 32 equal bytes (else ErrCallbackPadding; DingTalk's Java
// library pads to 32, its Go sample to 16, and both are accepted), that the
// length field lies within the text (else ErrCallbackLength) and, if the
// owner key is set, that the text ends with it exactly (else
// ErrCallbackOwner, compared in constant time).
//
// Decrypt does not authenticate: check the signature first, as [Open] does.
// It never panics, whatever encrypt holds.
func (c *CallbackCrypto) Decrypt(encrypt string) ([]byte, error) {
	msg, owner, err := c.DecryptOwner(encrypt)
	if err != nil {
		return nil, err
	}
	if c.ownerKey != "" && subtle.ConstantTimeCompare([]byte(owner), []byte(c.ownerKey)) != 1 {
		return nil, ErrCallbackOwner
	}
	return msg, nil
}

// DecryptOwner is Decrypt without the owner-key check: it returns the
// message and the owner key found after it (the corpId, AppKey or suiteKey
// DingTalk encrypted for), to learn or log which owner a message is for.
func (c *CallbackCrypto) DecryptOwner(encrypt string) (msg []byte, owner string, err error) {
	raw, err := base64.StdEncoding.DecodeString(encrypt)
	if err != nil {
		return nil, "", fmt.Errorf("%w: not standard base64", ErrCallbackCiphertext)
	}
	if len(raw) == 0 || len(raw)%aes.BlockSize != 0 {
		return nil, "", fmt.Errorf("%w: %d bytes, want a non-zero multiple of %d", ErrCallbackCiphertext, len(raw), aes.BlockSize)
	}
	cipher.NewCBCDecrypter(c.block, c.key[:aes.BlockSize]).CryptBlocks(raw, raw)

	pad := int(raw[len(raw)-1])
	if pad < 1 || pad > callbackPadBlock || pad > len(raw) {
		return nil, "", ErrCallbackPadding
	}
	var diff byte
	for _, b := range raw[len(raw)-pad:] {
		diff |= b ^ byte(pad)
	}
	if diff != 0 {
		return nil, "", ErrCallbackPadding
	}
	body := raw[:len(raw)-pad]
	if len(body) < callbackHeaderLen {
		return nil, "", ErrCallbackLength
	}
	n := uint64(binary.BigEndian.Uint32(body[callbackRandomLen:callbackHeaderLen]))
	if n > uint64(len(body)-callbackHeaderLen) {
		return nil, "", ErrCallbackLength
	}
	end := callbackHeaderLen + int(n)
	msg = make([]byte, n)
	copy(msg, body[callbackHeaderLen:end])
	return msg, string(body[end:]), nil
}

// CallbackResponse is the JSON answer DingTalk expects to a callback, within
// 1500 ms: the text "success", encrypted, and its signature with the
// timestamp and nonce. Without it DingTalk counts the event as failed and
// pushes it again.
type CallbackResponse struct {
	// MsgSignature is the signature of TimeStamp, Nonce and Encrypt.
	MsgSignature string `json:"msg_signature"`
	// TimeStamp is a timestamp (milliseconds) in decimal, as signed.
	TimeStamp string `json:"timeStamp"`
	// Nonce is a random string, as signed.
	Nonce string `json:"nonce"`
	// Encrypt is the encrypted "success".
	Encrypt string `json:"encrypt"`
}

// Success builds the answer that tells DingTalk an event was received: it
// encrypts "success" and signs it with timestamp and nonce (usually the
// request's own, or the current time in milliseconds and a fresh random
// string).
func (c *CallbackCrypto) Success(timestamp, nonce string) (*CallbackResponse, error) {
	enc, err := c.Encrypt([]byte("success"))
	if err != nil {
		return nil, err
	}
	return &CallbackResponse{
		MsgSignature: c.Signature(timestamp, nonce, enc),
		TimeStamp:    timestamp,
		Nonce:        nonce,
		Encrypt:      enc,
	}, nil
}

// Seal builds a callback as DingTalk would send it (for fakes and tests): it
// encrypts msg and signs the result with timestamp and nonce, returning the
// body's encrypt and the query's signature.
func (c *CallbackCrypto) Seal(msg []byte, timestamp, nonce string) (encrypt, signature string, err error) {
	encrypt, err = c.Encrypt(msg)
	if err != nil {
		return "", "", err
	}
	return encrypt, c.Signature(timestamp, nonce, encrypt), nil
}

// Open does what a callback's receiver must: it verifies signature (else
// ErrCallbackSignature, before anything is decrypted) and then decrypts
// encrypt with the owner-key check, returning the event's JSON.
func (c *CallbackCrypto) Open(signature, timestamp, nonce, encrypt string) ([]byte, error) {
	if !c.Verify(signature, timestamp, nonce, encrypt) {
		return nil, ErrCallbackSignature
	}
	return c.Decrypt(encrypt)
}
