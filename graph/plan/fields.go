package plan

// fieldID names one field of one object type of the schema.
type fieldID uint8

const (
	typename fieldID = iota // __typename, of any type: its name is in typenames

	linkID
	linkInstitutionID
	linkInstitutionName
	linkInstitutionAvatar
	linkState
	linkErrorCode
	linkProvider
	linkTags
	linkWebhook
	linkProducts
	linkAvailableProducts
	linkAccounts

	productsAccounts
	productsAccountNumbers
	productsIdentity
	productsTransactions
	productsInvestments
	productsEnrichment

	statusRefreshedAt
	statusLastAttemptedAt
	statusErrorCode
	statusErrorMessage
	statusUnavailable
	statusLastEnriched

	accountID
	accountType
	accountName
	accountNickname
	accountMask
	accountBalances
	accountOriginalID
	accountClosed
	accountOwners

	balancesCurrency
	balancesAvailable
	balancesCurrent
	balancesLimit
	balancesBalanceDate

	ownerNames
	ownerAddresses
	ownerPhoneNumbers
	ownerEmails

	addressStreet
	addressCity
	addressRegion
	addressPostalCode
	addressCountry
	addressPrimary

	phoneNumber
	phoneType
	phonePrimary

	emailAddress
	emailPrimary
)

// fieldIDs maps "Type.field" to its id; a field not here is not covered.
var fieldIDs = map[string]fieldID{
	"Link.id": linkID, "Link.institutionId": linkInstitutionID, "Link.institutionName": linkInstitutionName,
	"Link.institutionAvatar": linkInstitutionAvatar, "Link.state": linkState, "Link.errorCode": linkErrorCode,
	"Link.provider": linkProvider, "Link.tags": linkTags, "Link.webhook": linkWebhook, "Link.products": linkProducts,
	"Link.availableProducts": linkAvailableProducts, "Link.accounts": linkAccounts,

	"Products.accounts": productsAccounts, "Products.accountNumbers": productsAccountNumbers,
	"Products.identity": productsIdentity, "Products.transactions": productsTransactions,
	"Products.investments": productsInvestments, "Products.enrichment": productsEnrichment,

	"ProductStatus.refreshedAt": statusRefreshedAt, "ProductStatus.lastAttemptedAt": statusLastAttemptedAt,
	"ProductStatus.errorCode": statusErrorCode, "ProductStatus.errorMessage": statusErrorMessage,
	"ProductStatus.unavailable": statusUnavailable, "ProductStatus.lastEnriched": statusLastEnriched,

	"Account.id": accountID, "Account.type": accountType, "Account.name": accountName,
	"Account.nickname": accountNickname, "Account.mask": accountMask, "Account.balances": accountBalances,
	"Account.originalId": accountOriginalID, "Account.closed": accountClosed, "Account.owners": accountOwners,

	"Balances.currency": balancesCurrency, "Balances.available": balancesAvailable,
	"Balances.current": balancesCurrent, "Balances.limit": balancesLimit, "Balances.balanceDate": balancesBalanceDate,

	"Owner.names": ownerNames, "Owner.addresses": ownerAddresses,
	"Owner.phoneNumbers": ownerPhoneNumbers, "Owner.emails": ownerEmails,

	"Address.street": addressStreet, "Address.city": addressCity, "Address.region": addressRegion,
	"Address.postalCode": addressPostalCode, "Address.country": addressCountry, "Address.primary": addressPrimary,

	"PhoneNumber.number": phoneNumber, "PhoneNumber.type": phoneType, "PhoneNumber.primary": phonePrimary,

	"Email.address": emailAddress, "Email.primary": emailPrimary,
}

func init() {
	for _, typ := range []string{"Link", "Products", "ProductStatus", "Account", "Balances", "Owner", "Address", "PhoneNumber", "Email"} {
		fieldIDs[typ+".__typename"] = typename
	}
}

// childTypes names the object type of each object field.
var childTypes = map[fieldID]string{
	linkProducts: "Products", linkAccounts: "Account",
	productsAccounts: "ProductStatus", productsAccountNumbers: "ProductStatus", productsIdentity: "ProductStatus",
	productsTransactions: "ProductStatus", productsInvestments: "ProductStatus", productsEnrichment: "ProductStatus",
	accountBalances: "Balances", accountOwners: "Owner",
	ownerAddresses: "Address", ownerPhoneNumbers: "PhoneNumber", ownerEmails: "Email",
}
